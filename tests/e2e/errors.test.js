// Errors as the client surfaces them: the HTTP status Qdrant uses and
// Qdrant's error envelope {"status": {"error": "..."}}.
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { makeClient, uniqueName, expectStatus } from './lib/harness.js';

const client = makeClient();
const name = uniqueName('errors');
const named = uniqueName('errors_named');

before(async () => {
    await client.createCollection(name, { vectors: { size: 4, distance: 'Cosine' } });
    await client.createCollection(named, { vectors: { a: { size: 2, distance: 'Dot' } } });
    await client.upsert(name, { wait: true, points: [{ id: 1, vector: [1, 2, 3, 4], payload: { x: 1 } }] });
});

after(async () => {
    await client.deleteCollection(name);
    await client.deleteCollection(named);
});

test('a missing collection is 404 for every kind of request', async () => {
    const missing = uniqueName('no_such_collection');
    const err = await expectStatus(client.getCollection(missing), 404, 'getCollection');
    assert.match(err.data.status.error, /Not found/);
    assert.match(err.data.status.error, new RegExp(missing));
    await expectStatus(client.upsert(missing, { wait: true, points: [{ id: 1, vector: [1, 2, 3, 4] }] }), 404, 'upsert');
    await expectStatus(client.query(missing, { query: [1, 2, 3, 4] }), 404, 'query');
    await expectStatus(client.search(missing, { vector: [1, 2, 3, 4] }), 404, 'search');
    await expectStatus(client.scroll(missing, {}), 404, 'scroll');
    await expectStatus(client.count(missing, {}), 404, 'count');
    await expectStatus(client.retrieve(missing, { ids: [1] }), 404, 'retrieve');
    await expectStatus(client.delete(missing, { wait: true, points: [1] }), 404, 'delete');
    await expectStatus(client.setPayload(missing, { points: [1], payload: { a: 1 } }), 404, 'setPayload');
    await expectStatus(client.getCollectionAliases(missing), 404, 'getCollectionAliases');
    // deleting a missing collection is not an error in Qdrant: result false
    assert.equal(await client.deleteCollection(missing), false);
});

test('a vector of the wrong dimension is 400 (upsert, batch, updateVectors, query, search)', async () => {
    const err = await expectStatus(client.upsert(name, { wait: true, points: [{ id: 2, vector: [1, 2, 3] }] }), 400, 'upsert');
    assert.match(err.data.status.error, /Wrong input/);
    await expectStatus(client.upsert(name, { wait: true, batch: { ids: [2, 3], vectors: [[1, 2, 3, 4], [1, 2, 3, 4, 5]] } }), 400, 'batch upsert');
    await expectStatus(client.updateVectors(name, { wait: true, points: [{ id: 1, vector: [1, 2] }] }), 400, 'updateVectors');
    await expectStatus(client.query(name, { query: [1, 2, 3] }), 400, 'query');
    await expectStatus(client.search(name, { vector: [1, 2, 3, 4, 5] }), 400, 'search');
    await expectStatus(client.upsert(named, { wait: true, points: [{ id: 1, vector: { a: [1, 2, 3] } }] }), 400, 'named upsert');
    // a rejected write changes nothing
    assert.equal((await client.count(name)).count, 1);
    assert.deepEqual((await client.retrieve(name, { ids: [2, 3] })), []);
});

test('creating an existing collection is 409', async () => {
    const err = await expectStatus(client.createCollection(name, { vectors: { size: 4, distance: 'Cosine' } }), 409, 'createCollection');
    assert.match(err.data.status.error, /already exists/);
    // the existing collection is untouched
    assert.equal((await client.getCollection(name)).points_count, 1);
});

test('other bad input is 400: unknown vector name, bad distance, malformed filter; a missing point is 404', async () => {
    await expectStatus(client.query(named, { query: [1, 2], using: 'nope' }), 400, 'query using an unknown vector');
    await expectStatus(client.upsert(named, { wait: true, points: [{ id: 1, vector: { nope: [1, 2] } }] }), 400, 'upsert of an unknown vector');
    await expectStatus(client.createCollection(uniqueName('bad'), { vectors: { size: 4, distance: 'Hamming' } }), 400, 'unknown distance');
    await expectStatus(client.count(name, { filter: { must: [{ key: 'x', range: { gt: 'soon' } }] } }), 400, 'range with a non-date string');
    await expectStatus(client.setPayload(name, { wait: true, points: [12345], payload: { a: 1 } }), 404, 'setPayload of a missing point');
    await expectStatus(client.updateVectors(name, { wait: true, points: [{ id: 12345, vector: [1, 2, 3, 4] }] }), 404, 'updateVectors of a missing point');
});
