// The whole zero-downtime model migration, as the README runbook runs it
// (docs/migration.md): collection `old` (veclog/hash-256) behind alias
// `prod`, 50,000 points; a new collection `new` (veclog/hash-512); a
// dual-write route `mig -> old, new:veclog/hash-512`; a kafkajs producer
// that keeps writing upserts, payload updates and deletes while a
// backfill job re-embeds `old` into `new` insert-only; the server killed
// with SIGKILL once mid-backfill and restarted on the same storage; then
// the guarded cut-over while a query loop runs through the alias.
//
// At the end: `new` holds exactly the state this test computed from what
// it produced (ids, payloads), every vector of `new` is the hash-512
// embedding of its text, no deleted point came back, /migrations/verify
// agrees, and no query through the alias failed.
//
// Runs its own broker (`veclog broker`, a separate process, so the topic
// survives the kill) and its own server.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { makeClient, makeRng, startServer } from './lib/harness.js';

const N = 50_000;
const STABLE = 100;                 // ids 1..STABLE are never touched: the query loop uses them
const TOPIC = 'mig';
const JOB = 'mig-1';
const rng = makeRng();
const base = fs.mkdtempSync(path.join(process.env.VECLOG_E2E_TMP ?? os.tmpdir(), 'migration-'));
const storage = path.join(base, 'storage');
let broker, server, producer;

after(async () => {
    await producer?.disconnect().catch(() => {});
    if (server && server.proc.exitCode === null && server.proc.signalCode === null) await server.kill9();
    broker?.proc.kill('SIGKILL');
    if (!process.env.VECLOG_E2E_KEEP) fs.rmSync(base, { recursive: true, force: true });
});

const WORDS = ('alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike ' +
    'november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu ' +
    'amber basil cedar dune ember fern grove harbor iris jade kelp lotus maple nectar opal ' +
    'pine quartz reed sage thyme umber vale willow yarrow zinnia').split(' ');
const textOf = (id, gen) =>
    `item ${id} rev ${gen} ` + Array.from({ length: 8 }, () => WORDS[rng.int(0, WORDS.length - 1)]).join(' ');

async function startBroker() {
    const proc = spawn(process.env.VECLOG_BIN, ['broker'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const bs = await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no bootstrap.servers from veclog broker')), 10_000);
        proc.stdout.on('data', (d) => {
            out += d;
            const m = out.match(/bootstrap\.servers=(\S+)/);
            if (m) { clearTimeout(t); resolve(m[1]); }
        });
    });
    return { proc, bs };
}

async function api(url, method, p, body) {
    const res = await fetch(url + p, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const doc = await res.json();
    return { status: res.status, result: doc.result, error: doc.status?.error };
}

async function until(what, fn, ms = 60_000) {
    const end = Date.now() + ms;
    let last;
    while (Date.now() < end) {
        try { last = await fn(); } catch { last = undefined; }
        if (last) return last;
        await new Promise((r) => setTimeout(r, 200));
    }
    assert.fail(`timed out waiting for ${what}`);
}

test('a live collection migrates to a new model with no hole and no failed query', { timeout: 240_000 }, async () => {
    broker = await startBroker();
    Object.assign(process.env, {
        VECLOG__KAFKA__BROKERS: broker.bs,
        VECLOG__KAFKA__TOPICS: TOPIC,
        VECLOG__KAFKA__ROUTES__MIG: 'old,new:veclog/hash-512',
        VECLOG__DLQ__TOPIC: `${TOPIC}-dlq`,
        VECLOG__KAFKA__BATCH_TIMEOUT_MS: '20',
        // the killed member's partitions move once its session expires:
        // a short session keeps the restart quick (the default is 45 s)
        VECLOG__KAFKA__PROPERTIES__SESSION_TIMEOUT_MS: '6000',
        VECLOG__KAFKA__PROPERTIES__HEARTBEAT_INTERVAL_MS: '1000',
    });
    server = await startServer(storage, 'migration-server.log');
    let client = makeClient(server.url);

    // 1. the live collection: 50,000 points embedded by the server (hash-256)
    await client.createCollection('old', { vectors: { size: 256, distance: 'Cosine' } });
    const model = new Map(); // id -> { text, payload } | null (deleted)
    for (let start = 1; start <= N; start += 2500) {
        const points = [];
        for (let id = start; id < start + 2500 && id <= N; id++) {
            const text = textOf(id, 0);
            points.push({ id, vector: { text, model: 'veclog/hash-256' }, payload: { text, gen: 0 } });
            model.set(id, { text, payload: { text, gen: 0 } });
        }
        await client.upsert('old', { wait: true, points });
    }
    await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'old', alias_name: 'prod' } }] });

    // 2. the new collection and a producer writing through the dual-write route
    await client.createCollection('new', { vectors: { size: 512, distance: 'Cosine' } });
    const kafka = new Kafka({ clientId: 'veclog-e2e-mig', brokers: [broker.bs], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
    producer = kafka.producer();
    await producer.connect();
    let producing = true, produced = 0, gen = 1;
    const liveIds = () => [...model.keys()].filter((id) => id > STABLE && model.get(id));
    const produceLoop = (async () => {
        while (producing) {
            const messages = [];
            const ids = liveIds();
            for (let i = 0; i < 40; i++) {
                const r = rng.int(0, 99);
                if (r < 45) {                                  // upsert: a new text, re-embedded
                    const id = rng.chance(0.2) ? N + rng.int(1, 5000) : ids[rng.int(0, ids.length - 1)];
                    if (id <= STABLE) continue;
                    const text = textOf(id, gen);
                    const payload = { text, gen: gen++ };
                    messages.push({ key: String(id), value: JSON.stringify({ id, vector: { text, model: 'veclog/hash-256' }, payload }) });
                    model.set(id, { text, payload });
                } else if (r < 85) {                           // partial update
                    const id = ids[rng.int(0, ids.length - 1)];
                    const tag = `t${gen++}`;
                    messages.push({ key: String(id), value: JSON.stringify({ op: 'set_payload', payload: { tag }, points: [id] }) });
                    const cur = model.get(id);
                    if (cur) cur.payload = { ...cur.payload, tag };
                } else {                                       // delete (a tombstone)
                    const id = ids[rng.int(0, ids.length - 1)];
                    messages.push({ key: String(id), value: null });
                    model.set(id, null);
                }
            }
            await producer.send({ topic: TOPIC, acks: -1, messages });
            produced += messages.length;
            await new Promise((r) => setTimeout(r, 25));
        }
    })();

    // 3. the backfill, re-embedding `text` with the new model
    const start = await api(server.url, 'POST', '/backfill', {
        id: JOB, source: 'old', target: 'new', mode: 'embed', field: 'text',
        model: 'veclog/hash-512', batch_size: 500, rate_limit: 8000,
    });
    assert.equal(start.status, 200, start.error);
    await until('backfill under way', async () => (await api(server.url, 'GET', `/backfill/${JOB}`)).result.done >= 8000);

    // 4. kill -9 mid-backfill; restart on the same storage: the job resumes
    const killedAt = (await api(server.url, 'GET', `/backfill/${JOB}`)).result.done;
    assert.ok(killedAt < N, `the backfill finished before the kill (${killedAt})`);
    await server.kill9();
    server = await startServer(storage, 'migration-server.log');
    client = makeClient(server.url);
    const resumed = await api(server.url, 'GET', `/backfill/${JOB}`);
    assert.equal(resumed.status, 200, resumed.error);
    assert.ok(['running', 'completed'].includes(resumed.result.state), JSON.stringify(resumed.result));

    // 5. a query loop through the alias, from now until after the cut-over
    let querying = true, queries = 0;
    const failures = [];
    const queryLoop = (async () => {
        while (querying) {
            const id = rng.int(1, STABLE);
            try {
                const r = await client.query('prod', { query: id, limit: 5 });
                if (!Array.isArray(r.points)) failures.push(`query ${id}: ${JSON.stringify(r)}`);
            } catch (e) {
                failures.push(`query ${id}: ${e.status ?? ''} ${e.message}`);
            }
            queries++;
        }
    })();

    // 6. stop producing; wait for the backfill and the route to drain
    await until('backfill completed', async () => (await api(server.url, 'GET', `/backfill/${JOB}`)).result.state === 'completed', 120_000);
    producing = false;
    await produceLoop;
    await until('dual-write lag 0', async () => {
        const parts = (await api(server.url, 'GET', '/ingest/partitions')).result.partitions.filter((p) => p.topic === TOPIC);
        return parts.length > 0 && parts.every((p) => p.lag === 0);
    });

    // 7. the guarded cut-over (a wrong `from` is refused first)
    const wrong = await api(server.url, 'POST', '/migrations/cutover', { alias: 'prod', from: 'new', to: 'new' });
    assert.equal(wrong.status, 409, JSON.stringify(wrong));
    const verify = await api(server.url, 'POST', '/migrations/verify', { source: 'old', target: 'new', sample: 20 });
    assert.equal(verify.status, 200, verify.error);
    assert.equal(verify.result.ids_equal, true, JSON.stringify(verify.result));
    assert.equal(verify.result.counts_equal, true, JSON.stringify(verify.result));
    const cut = await api(server.url, 'POST', '/migrations/cutover', { alias: 'prod', from: 'old', to: 'new', backfill: JOB, topics: [TOPIC] });
    assert.equal(cut.status, 200, cut.error);
    await new Promise((r) => setTimeout(r, 500));
    querying = false;
    await queryLoop;
    assert.deepEqual(failures, [], `${failures.length} of ${queries} queries through the alias failed`);
    assert.ok(queries > 10, `only ${queries} queries ran`);

    // 8. `new` is exactly the computed state: ids, payloads, no resurrected deletes
    const expectLive = [...model.entries()].filter(([, v]) => v);
    const got = new Map();
    for (let offset; ;) {
        const page = await client.scroll('new', { limit: 5000, offset, with_payload: true, with_vector: false });
        for (const p of page.points) got.set(Number(p.id), p.payload);
        if (page.next_page_offset === null || page.next_page_offset === undefined) break;
        offset = page.next_page_offset;
    }
    assert.equal(got.size, expectLive.length, `new holds ${got.size} points, expected ${expectLive.length} (produced ${produced} messages, killed at ${killedAt})`);
    let wrongPayload = 0, example;
    for (const [id, v] of expectLive) {
        const p = got.get(id);
        if (JSON.stringify(p) !== JSON.stringify(v.payload) &&
            !(p && Object.keys(p).length === Object.keys(v.payload).length &&
              Object.entries(v.payload).every(([k, x]) => JSON.stringify(p[k]) === JSON.stringify(x)))) {
            wrongPayload++;
            example ??= { id, got: p, want: v.payload };
        }
    }
    assert.equal(wrongPayload, 0, `payloads differ, e.g. ${JSON.stringify(example)}`);
    const deleted = [...model.entries()].filter(([, v]) => v === null).map(([id]) => id);
    const back = deleted.length ? await client.retrieve('new', { ids: deleted.slice(0, 2000) }) : [];
    assert.equal(back.length, 0, `deleted points came back: ${back.map((p) => p.id).slice(0, 10)}`);

    // 9. vectors are the new model's: each sampled text finds its own point first
    for (const [id, v] of rng.sample(expectLive, 100)) {
        const r = await client.query('new', { query: { text: v.text, model: 'veclog/hash-512' }, limit: 1 });
        assert.equal(Number(r.points[0]?.id), id, `text of ${id} finds ${r.points[0]?.id}`);
        assert.ok(r.points[0].score > 0.999, `score ${r.points[0].score} for ${id}`);
    }
    const stop = await server.stop();
    assert.equal(stop.code, 0, 'clean shutdown');
});
