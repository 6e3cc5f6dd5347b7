// Point operations through the client, each checked against a model of
// the collection: upsert (points and batch forms), retrieve, delete by ids
// and by filter, payload edits, vector edits, batchUpdate, count.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeClient, uniqueName, makeRng } from './lib/harness.js';
import { Model, assertState, assertVectorClose } from './lib/model.js';
import { matchFilter } from './lib/reference.js';

const client = makeClient();
const U1 = '5c56c793-69f3-4fbf-87e6-c4bf54c28c26';
const U2 = 'd0b4a3f6-0e2e-4a4c-9a55-1b2f3c4d5e6f';

async function named(prefix) {
    const name = uniqueName(prefix);
    await client.createCollection(name, {
        vectors: { a: { size: 3, distance: 'Dot' }, b: { size: 2, distance: 'Euclid' } },
    });
    return name;
}

// Apply op to the model and send it through the matching client method.
async function run(name, model, op) {
    const [kind, body] = Object.entries(op)[0];
    const call = {
        upsert: () => client.upsert(name, { wait: true, ...body }),
        delete: () => client.delete(name, { wait: true, ...body }),
        set_payload: () => client.setPayload(name, { wait: true, ...body }),
        overwrite_payload: () => client.overwritePayload(name, { wait: true, ...body }),
        delete_payload: () => client.deletePayload(name, { wait: true, ...body }),
        clear_payload: () => client.clearPayload(name, { wait: true, ...body }),
        update_vectors: () => client.updateVectors(name, { wait: true, ...body }),
        delete_vectors: () => client.deleteVectors(name, { wait: true, ...body }),
    }[kind];
    const res = await call();
    assert.equal(res.status, 'completed', `${kind}: ${JSON.stringify(res)}`);
    assert.equal(typeof res.operation_id, 'number');
    model.apply(op);
}

test('upsert in the points form and in the batch form (wait=true), then retrieve', async () => {
    const name = uniqueName('upsert');
    await client.createCollection(name, { vectors: { size: 3, distance: 'Dot' } });
    const model = new Model();
    await run(name, model, {
        upsert: {
            points: [
                { id: 1, vector: [1, 2, 3], payload: { city: 'Berlin', tags: ['a', 'b'], meta: { x: 1.5 } } },
                { id: U1, vector: [0.5, -1, 0.25], payload: { city: 'Moscow' } },
                { id: 3, vector: [0, 0, 1] },
            ],
        },
    });
    await run(name, model, {
        upsert: {
            batch: {
                ids: [10, 11, U2],
                vectors: [[1, 1, 1], [2, 2, 2], [-1, 0, 1]],
                payloads: [{ n: 10 }, { n: 11, flag: true }, { n: -1 }],
            },
        },
    });
    await assertState(client, name, model);

    // retrieve: selected ids only (missing ones are left out), in any order
    const got = await client.retrieve(name, { ids: [U2, 1, 999], with_payload: true, with_vector: true });
    assert.deepEqual(got.map((p) => p.id).sort(), [1, U2].sort());
    const one = got.find((p) => p.id === 1);
    assert.deepEqual(one.payload, { city: 'Berlin', tags: ['a', 'b'], meta: { x: 1.5 } });
    assert.deepEqual(one.vector, [1, 2, 3]);
    // defaults: payload yes, vector no
    const [dflt] = await client.retrieve(name, { ids: [10] });
    assert.deepEqual(dflt.payload, { n: 10 });
    assert.ok(dflt.vector == null, `vector not requested, got ${JSON.stringify(dflt.vector)}`);
    const [bare] = await client.retrieve(name, { ids: [11], with_payload: false, with_vector: false });
    assert.ok(bare.payload == null && bare.vector == null, JSON.stringify(bare));
    const [sel] = await client.retrieve(name, { ids: [1], with_payload: ['city', 'meta'] });
    assert.deepEqual(sel.payload, { city: 'Berlin', meta: { x: 1.5 } });

    // upsert of an existing id replaces vector and payload as a whole
    await run(name, model, { upsert: { points: [{ id: 1, vector: [3, 2, 1], payload: { only: 'this' } }] } });
    await run(name, model, { upsert: { batch: { ids: [10], vectors: [[0, 1, 0]] } } });
    await assertState(client, name, model);
    assert.equal((await client.getCollection(name)).points_count, 6);
    await client.deleteCollection(name);
});

test('upsert to a Cosine collection stores normalised vectors; named-vector batch upsert', async () => {
    const name = uniqueName('upsert_cos');
    await client.createCollection(name, { vectors: { size: 4, distance: 'Cosine' } });
    const model = new Model();
    await run(name, model, { upsert: { points: [{ id: 1, vector: [3, 0, 4, 0] }, { id: 2, vector: [1, 1, 1, 1] }] } });
    await run(name, model, { upsert: { batch: { ids: [3], vectors: [[0.1, 0.2, 0.3, 0.4]] } } });
    await assertState(client, name, model, { cosine: true });
    const [p] = await client.retrieve(name, { ids: [1], with_vector: true });
    assertVectorClose(p.vector, [0.6, 0, 0.8, 0], false, 'normalised [3,0,4,0]');
    await client.deleteCollection(name);

    const nm = await named('upsert_named');
    const m2 = new Model({ named: true });
    await run(nm, m2, {
        upsert: { batch: { ids: [1, 2, U1], vectors: { a: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], b: [[1, 1], [2, 2], [3, 3]] } } },
    });
    await run(nm, m2, { upsert: { points: [{ id: 4, vector: { a: [1, 2, 3] }, payload: { only_a: true } }] } });
    await assertState(client, nm, m2);
    await client.deleteCollection(nm);
});

test('delete points by ids and by filter; count follows', async () => {
    const name = uniqueName('delete');
    await client.createCollection(name, { vectors: { size: 2, distance: 'Euclid' } });
    const model = new Model();
    const points = [];
    for (let i = 1; i <= 60; i++) points.push({ id: i, vector: [i, -i], payload: { n: i, odd: i % 2 === 1, tag: `t${i % 5}` } });
    points.push({ id: U1, vector: [0, 0], payload: { n: 100, tag: 't0' } });
    await run(name, model, { upsert: { points } });
    assert.equal((await client.count(name, { exact: true })).count, 61);

    await run(name, model, { delete: { points: [1, 2, 3, U1, 9999] } });
    assert.equal((await client.count(name)).count, 57);
    const filter = { must: [{ key: 'odd', match: { value: true } }, { key: 'n', range: { gt: 30 } }] };
    await run(name, model, { delete: { filter } });
    await run(name, model, { delete: { filter: { should: [{ key: 'tag', match: { any: ['t1', 't2'] } }] } } });
    assert.equal((await client.count(name)).count, model.points.size);
    await assertState(client, name, model);
    assert.equal((await client.count(name, { filter })).count, 0);
    await client.deleteCollection(name);
});

test('setPayload, overwritePayload, deletePayload, clearPayload by ids and by filter', async () => {
    const name = uniqueName('payload');
    await client.createCollection(name, { vectors: { size: 2, distance: 'Dot' } });
    const model = new Model();
    const points = [];
    for (let i = 1; i <= 20; i++)
        points.push({ id: i, vector: [i, 1], payload: { n: i, group: i % 3, meta: { a: i, b: 'x', deep: { c: [i] } } } });
    await run(name, model, { upsert: { points } });

    await run(name, model, { set_payload: { points: [1, 2, 3], payload: { color: 'red', n: -1 } } });
    await run(name, model, { set_payload: { filter: { must: [{ key: 'group', match: { value: 1 } }] }, payload: { tier: 'gold', arr: [1, 2] } } });
    await assertState(client, name, model);

    await run(name, model, { set_payload: { points: [4, 5], key: 'meta.deep', payload: { c: 'replaced', d: true } } });
    await run(name, model, { set_payload: { points: [6], key: 'fresh.path', payload: { z: 1 } } });
    await run(name, model, { set_payload: { points: [7], key: 'n', payload: { was_a_number: true } } });
    await assertState(client, name, model);

    await run(name, model, { overwrite_payload: { points: [8, 9], payload: { replaced: true } } });
    await run(name, model, { overwrite_payload: { filter: { must: [{ key: 'n', range: { gte: 18 } }] }, payload: { big: 1 } } });
    await assertState(client, name, model);

    await run(name, model, { delete_payload: { points: [10, 11, 12], keys: ['group', 'meta.b', 'missing'] } });
    await run(name, model, { delete_payload: { filter: { must: [{ key: 'tier', match: { value: 'gold' } }] }, keys: ['arr', 'meta'] } });
    await assertState(client, name, model);

    await run(name, model, { clear_payload: { points: [13, 14] } });
    await run(name, model, { clear_payload: { filter: { must: [{ key: 'color', match: { value: 'red' } }] } } });
    await assertState(client, name, model);
    await client.deleteCollection(name);
});

// Qdrant (since 1.8) merges a set_payload into the stored payload with
// serde's merge_map, in which a null value deletes the key
// (lib/segment/src/common/utils.rs).
test('setPayload with a null value removes that key from an existing payload', async () => {
    const name = uniqueName('payload_null');
    await client.createCollection(name, { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert(name, { wait: true, points: [{ id: 1, vector: [1, 1], payload: { keep: 1, drop: 2 } }] });
    await client.setPayload(name, { wait: true, points: [1], payload: { drop: null, added: 3 } });
    const [p] = await client.retrieve(name, { ids: [1] });
    assert.deepEqual(p.payload, { keep: 1, added: 3 });
    await client.deleteCollection(name);
});

test('updateVectors and deleteVectors on named vectors', async () => {
    const name = await named('vectors');
    const model = new Model({ named: true });
    const points = [];
    for (let i = 1; i <= 10; i++) points.push({ id: i, vector: { a: [i, 0, 1], b: [i, i] }, payload: { n: i } });
    await run(name, model, { upsert: { points } });

    await run(name, model, { update_vectors: { points: [{ id: 1, vector: { a: [9, 9, 9] } }, { id: 2, vector: { b: [-1, -1] } }] } });
    await run(name, model, { update_vectors: { points: [{ id: 3, vector: { a: [0, 0, 0], b: [0, 0] } }] } });
    await assertState(client, name, model);

    await run(name, model, { delete_vectors: { points: [4, 5], vector: ['b'] } });
    await run(name, model, { delete_vectors: { filter: { must: [{ key: 'n', range: { gte: 9 } }] }, vector: ['a'] } });
    await assertState(client, name, model);

    // a point without vector b is not a candidate for a search using b
    const { points: hits } = await client.query(name, { query: [0, 0], using: 'b', limit: 100 });
    assert.deepEqual(hits.map((h) => h.id).sort((x, y) => x - y), [1, 2, 3, 6, 7, 8, 9, 10]);
    // ... and a point given back its vector is again
    await run(name, model, { update_vectors: { points: [{ id: 4, vector: { b: [0.5, 0.5] } }] } });
    await assertState(client, name, model);
    const { points: again } = await client.query(name, { query: [0.5, 0.5], using: 'b', limit: 1 });
    assert.equal(again[0].id, 4);
    await client.deleteCollection(name);
});

test('updateVectors on an unnamed-vector collection', async () => {
    const name = uniqueName('vectors_unnamed');
    await client.createCollection(name, { vectors: { size: 2, distance: 'Manhattan' } });
    const model = new Model();
    await run(name, model, { upsert: { points: [{ id: 1, vector: [1, 1] }, { id: 2, vector: [2, 2], payload: { p: 1 } }] } });
    await run(name, model, { update_vectors: { points: [{ id: 2, vector: [-3, 4] }] } });
    await assertState(client, name, model);
    const { points } = await client.query(name, { query: [-3, 4], limit: 1, with_payload: true });
    assert.equal(points[0].id, 2);
    assert.equal(points[0].score, 0);
    assert.deepEqual(points[0].payload, { p: 1 });
    await client.deleteCollection(name);
});

test('batchUpdate applies every kind of operation in order', async () => {
    const name = await named('batch');
    const model = new Model({ named: true });
    const operations = [
        { upsert: { points: [1, 2, 3, 4, 5, 6].map((i) => ({ id: i, vector: { a: [i, 0, 0], b: [0, i] }, payload: { n: i, g: i % 2 } })) } },
        { upsert: { batch: { ids: [7, U1], vectors: { a: [[7, 7, 7], [8, 8, 8]], b: [[7, 7], [8, 8]] }, payloads: [{ n: 7 }, { n: 8 }] } } },
        { delete: { points: [6] } },
        { set_payload: { points: [1, 2], payload: { s: 'set' } } },
        { set_payload: { filter: { must: [{ key: 'g', match: { value: 1 } }] }, payload: { odd: true } } },
        { overwrite_payload: { points: [3], payload: { o: 'over' } } },
        { delete_payload: { points: [1], keys: ['g'] } },
        { clear_payload: { points: [2] } },
        { update_vectors: { points: [{ id: 4, vector: { a: [4, 4, 4] } }] } },
        { delete_vectors: { points: [5], vector: ['a'] } },
        { delete: { filter: { must: [{ key: 'n', match: { value: 8 } }] } } },
        { upsert: { points: [{ id: 9, vector: { a: [9, 9, 9], b: [9, 9] } }] } },
    ];
    const res = await client.batchUpdate(name, { wait: true, operations });
    assert.equal(res.length, operations.length, JSON.stringify(res));
    for (const r of res) assert.equal(r.status, 'completed');
    for (const op of operations) model.apply(op);
    await assertState(client, name, model);
    await client.deleteCollection(name);
});

test('count: exact counts with and without filters match the data', async () => {
    const name = uniqueName('count');
    await client.createCollection(name, { vectors: { size: 2, distance: 'Dot' } });
    const rng = makeRng();
    const points = [];
    for (let i = 0; i < 300; i++)
        points.push({ id: i, vector: [rng.next(), rng.next()], payload: { k: rng.int(0, 9), s: rng.pick(['a', 'b', 'c']) } });
    await client.upsert(name, { wait: true, points });
    assert.deepEqual(await client.count(name), { count: 300 });
    assert.deepEqual(await client.count(name, { exact: true }), { count: 300 });
    for (const filter of [
        { must: [{ key: 'k', range: { lt: 3 } }] },
        { should: [{ key: 's', match: { value: 'a' } }, { key: 'k', match: { value: 9 } }] },
        { must_not: [{ key: 's', match: { any: ['a', 'b'] } }] },
        { must: [{ key: 'nope', match: { value: 1 } }] },
    ]) {
        const want = points.filter((p) => matchFilter(filter, p)).length;
        assert.equal((await client.count(name, { filter, exact: true })).count, want, JSON.stringify(filter));
    }
    await client.deleteCollection(name);
});
