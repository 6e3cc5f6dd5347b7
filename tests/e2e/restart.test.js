// Durability through the client: writes acknowledged with wait=false
// survive `kill -9` of the server, and everything survives a clean
// SIGTERM restart.  This file runs its own server (VECLOG_BIN) on its own
// storage, so killing it disturbs no other test.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import { makeClient, makeRng, startServer, scrollAll } from './lib/harness.js';
import { compareIds, idKey } from './lib/reference.js';

const rng = makeRng();
const base = fs.mkdtempSync(path.join(process.env.VECLOG_E2E_TMP ?? os.tmpdir(), 'restart-'));
const storage = path.join(base, 'storage');
let server;

after(async () => {
    if (server && server.proc.exitCode === null && server.proc.signalCode === null) await server.kill9();
    fs.rmSync(base, { recursive: true, force: true });
});

const vec = () => Array.from({ length: 4 }, () => rng.int(-8, 8) / 8);

test('writes acknowledged with wait=false survive kill -9 and a restart on the same storage', async (t) => {
    server = await startServer(storage);
    let client = makeClient(server.url);
    const coll = 'durable';
    await client.createCollection(coll, { vectors: { size: 4, distance: 'Dot' } });
    await client.createCollection('durable_named', { vectors: { x: { size: 2, distance: 'Euclid' } } });
    await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: coll, alias_name: 'durable_alias' } }] });

    // Phase 1: sequential writes, each acknowledged before the next.
    const expected = new Map(); // idKey -> {id, vector, payload} | null (deleted)
    let nextId = 1;
    for (let b = 0; b < 30; b++) {
        const points = [];
        for (let i = 0; i < 10; i++) {
            const id = rng.chance(0.1) ? rng.uuid() : nextId++;
            points.push({ id, vector: vec(), payload: { batch: b, i } });
        }
        const res = await client.upsert(coll, { wait: false, points });
        assert.ok(['acknowledged', 'completed'].includes(res.status), JSON.stringify(res));
        for (const p of points) expected.set(idKey(p.id), p);
    }
    const victims = rng.sample([...expected.values()], 20);
    await client.delete(coll, { wait: false, points: victims.slice(0, 10).map((p) => p.id) });
    for (const p of victims.slice(0, 10)) expected.set(idKey(p.id), null);
    await client.setPayload(coll, { wait: false, points: victims.slice(10).map((p) => p.id), payload: { edited: true } });
    for (const p of victims.slice(10)) expected.get(idKey(p.id)).payload.edited = true;
    await client.upsert('durable_named', { wait: false, points: [{ id: 1, vector: { x: [1, 2] }, payload: { n: 'one' } }] });

    // Phase 2: four writers upserting concurrently; kill -9 while they run.
    const acked = [], unacked = [];
    let stop = false;
    const writer = async (w) => {
        for (let b = 0; !stop; b++) {
            const points = Array.from({ length: 5 }, (_, i) => ({ id: 100_000 + w * 10_000 + b * 5 + i, vector: vec(), payload: { w, b } }));
            try {
                const res = await client.upsert(coll, { wait: false, points });
                assert.ok(['acknowledged', 'completed'].includes(res.status));
                acked.push(points);
            } catch {
                unacked.push(points); // in flight when the server died
                return;
            }
        }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await new Promise((res) => setTimeout(res, 400));
    const killed = await server.kill9();
    stop = true;
    await Promise.all(writers);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(acked.length > 0, 'no concurrent write was acknowledged before the kill');
    t.diagnostic(`${acked.length} concurrent upserts acknowledged, ${unacked.length} in flight at kill -9`);

    // Restart on the same storage.
    server = await startServer(storage);
    client = makeClient(server.url);
    const got = await scrollAll(client, coll, { with_payload: true, with_vector: true });
    const gotById = new Map(got.map((p) => [idKey(p.id), p]));
    for (const [k, want] of expected) {
        if (want === null) {
            assert.ok(!gotById.has(k), `point ${k} was deleted (acknowledged) but is back after kill -9`);
            continue;
        }
        const p = gotById.get(k);
        assert.ok(p, `acknowledged point ${k} is missing after kill -9`);
        assert.deepEqual(p.vector, want.vector, `vector of ${k}`);
        assert.deepEqual(p.payload, want.payload, `payload of ${k}`);
    }
    for (const points of acked) {
        for (const w of points) {
            const p = gotById.get(idKey(w.id));
            assert.ok(p, `point ${w.id} acknowledged during the concurrent phase is missing after kill -9`);
            assert.deepEqual(p.vector, w.vector);
            assert.deepEqual(p.payload, w.payload);
        }
    }
    // a request in flight at the kill is applied whole or not at all
    for (const points of unacked) {
        const present = points.filter((w) => gotById.has(idKey(w.id))).length;
        assert.ok(present === 0 || present === points.length, `an upsert of 5 points came back with ${present} of them`);
    }
    const known = new Set([...expected.keys(), ...acked.flat().map((p) => idKey(p.id)), ...unacked.flat().map((p) => idKey(p.id))]);
    for (const p of got) assert.ok(known.has(idKey(p.id)), `point ${p.id} was never written`);
    assert.equal((await client.count(coll)).count, got.length);

    // collections, configuration and aliases came back too
    assert.deepEqual((await client.getCollection(coll)).config.params.vectors, { size: 4, distance: 'Dot' });
    assert.deepEqual((await client.retrieve('durable_named', { ids: [1], with_vector: true }))[0].vector, { x: [1, 2] });
    assert.equal((await client.count('durable_alias')).count, got.length);

    // Then a clean restart: SIGTERM exits 0 and everything is still there.
    await client.upsert(coll, { wait: true, points: [{ id: 999_999, vector: [1, 1, 1, 1], payload: { last: true } }] });
    const stopped = await server.stop();
    assert.deepEqual(stopped, { code: 0, signal: null }, 'SIGTERM must stop the server with exit status 0');
    server = await startServer(storage);
    client = makeClient(server.url);
    const again = await scrollAll(client, coll, { with_payload: true, with_vector: true });
    const wantAgain = [...got, { id: 999_999, payload: { last: true }, vector: [1, 1, 1, 1] }];
    assert.deepEqual(again, wantAgain.sort((a, b) => compareIds(a.id, b.id)));
    assert.deepEqual((await client.getAliases()).aliases, [{ alias_name: 'durable_alias', collection_name: coll }]);
    assert.deepEqual((await server.stop()).code, 0);
});
