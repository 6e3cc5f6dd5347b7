// Kafka ingest from a JavaScript producer: kafkajs (pinned in package.json)
// produces to the embedded development broker of the server that
// scripts/e2e.sh started (its address is in the server log:
// "embedded development broker at bootstrap.servers=HOST:PORT"; or set
// VECLOG_E2E_BROKERS), on the server's default topics `veclog` and
// `veclog-dlq`, and the points are read back with Qdrant's client:
// sink-connector and upsert-body messages, a set_payload envelope, a
// tombstone, and a malformed message that must land in the dead-letter
// topic with Kafka Connect's __connect.errors.* headers (read back with a
// kafkajs consumer).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, after } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { makeClient, uniqueName } from './lib/harness.js';

const TOPIC = 'veclog';
const DLQ = 'veclog-dlq';

function brokers() {
    if (process.env.VECLOG_E2E_BROKERS) return process.env.VECLOG_E2E_BROKERS.split(',');
    const log = path.join(process.env.VECLOG_E2E_TMP ?? '', 'server.log');
    const m = fs.existsSync(log) && fs.readFileSync(log, 'utf8').match(/bootstrap\.servers=(\S+)/);
    assert.ok(m, `no embedded broker address in ${log}: set VECLOG_E2E_BROKERS`);
    return m[1].split(',');
}

const kafka = new Kafka({ clientId: 'veclog-e2e', brokers: brokers(), logLevel: logLevel.NOTHING, retry: { retries: 8 } });
const producer = kafka.producer({ allowAutoTopicCreation: false });
const consumers = [];
after(async () => {
    await producer.disconnect().catch(() => {});
    for (const c of consumers) await c.disconnect().catch(() => {});
});

async function until(what, fn, ms = 30_000) {
    const end = Date.now() + ms;
    let last;
    while (Date.now() < end) {
        last = await fn();
        if (last) return last;
        await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`timed out waiting for ${what}`);
}

const header = (m, name) => (m.headers[name] === undefined ? undefined : m.headers[name].toString());

test('kafkajs messages are applied and the malformed one is dead-lettered', async () => {
    const client = makeClient();
    const coll = uniqueName('kafka');
    await client.createCollection(coll, { vectors: { size: 2, distance: 'Dot' } });
    await producer.connect();

    const j = (v) => JSON.stringify(v);
    const malformed = `not json (${coll})`;
    const [meta] = await producer.send({
        topic: TOPIC,
        acks: -1,
        messages: [
            { partition: 0, value: j({ collection_name: coll, id: 1, vector: [1, 0], payload: { city: 'Berlin' } }) },
            { partition: 0, value: j({ collection_name: coll, points: [{ id: 2, vector: [0, 1], payload: { n: 2 } }, { id: 3, vector: [1, 1] }] }) },
            { partition: 0, value: j({ collection_name: coll, op: 'set_payload', payload: { tag: 'x' }, points: [2] }) },
            { partition: 0, key: j({ id: 3, collection_name: coll }), value: null },
            { partition: 0, key: 'k-bad', value: malformed, headers: { trace: 'abc-123' } },
            { partition: 0, value: j({ collection_name: coll, id: 4, vector: [2, 2], payload: { after: 'bad' } }) },
        ],
    });
    const base = Number(meta.baseOffset);

    // the message after the malformed one is applied: everything before it is too
    await until('point 4', async () => (await client.retrieve(coll, { ids: [4] })).length === 1);
    const pts = await client.retrieve(coll, { ids: [1, 2, 3, 4], with_payload: true, with_vector: true });
    const byId = Object.fromEntries(pts.map((p) => [p.id, p]));
    assert.deepEqual(Object.keys(byId).map(Number).sort(), [1, 2, 4], 'point 3 deleted by the tombstone');
    assert.deepEqual(byId[1].payload, { city: 'Berlin' });
    assert.deepEqual(byId[1].vector, [1, 0]);
    assert.deepEqual(byId[2].payload, { n: 2, tag: 'x' }, 'set_payload merged');
    assert.deepEqual(byId[4].payload, { after: 'bad' });
    assert.equal((await client.count(coll, { exact: true })).count, 3);

    // the dead letter, read back from the beginning of the DLQ topic
    const consumer = kafka.consumer({ groupId: uniqueName('e2e-dlq-reader'), sessionTimeout: 10_000 });
    consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic: DLQ, fromBeginning: true });
    let dead;
    await consumer.run({
        eachMessage: async ({ message }) => {
            if (message.value && message.value.toString() === malformed) dead = message;
        },
    });
    await until('the dead letter', async () => dead, 60_000);
    await consumer.stop();

    assert.equal(dead.key.toString(), 'k-bad', 'original key kept');
    assert.equal(header(dead, 'trace'), 'abc-123', 'original header kept');
    assert.equal(header(dead, '__connect.errors.topic'), TOPIC);
    assert.equal(header(dead, '__connect.errors.partition'), '0');
    assert.equal(header(dead, '__connect.errors.offset'), String(base + 4));
    assert.equal(header(dead, '__connect.errors.stage'), 'VALUE_CONVERTER');
    assert.match(header(dead, '__connect.errors.exception.class.name'), /^veclog\.error\.[a-z_]+$/);
    assert.ok(header(dead, '__connect.errors.exception.message').length > 0);
    assert.equal(header(dead, '__veclog.redrive.count'), '0');
    await client.deleteCollection(coll);
});
