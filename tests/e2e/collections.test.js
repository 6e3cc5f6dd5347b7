// Collection management through the client: create (each distance, named
// vectors, config sections), get, list, exists, update, delete.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeClient, uniqueName, expectStatus } from './lib/harness.js';
import { METRICS } from './lib/reference.js';

const client = makeClient();

test('createCollection with each distance (Cosine, Dot, Euclid, Manhattan) and getCollection reports it', async () => {
    for (const distance of METRICS) {
        const name = uniqueName(`dist_${distance.toLowerCase()}`);
        assert.equal(await client.createCollection(name, { vectors: { size: 7, distance } }), true);
        const info = await client.getCollection(name);
        assert.equal(info.status, 'green');
        assert.equal(info.points_count, 0);
        assert.deepEqual(info.config.params.vectors, { size: 7, distance });
        assert.equal(await client.deleteCollection(name), true);
    }
});

test('createCollection with named vectors of different sizes and distances', async () => {
    const name = uniqueName('named');
    const vectors = {
        img: { size: 4, distance: 'Dot' },
        txt: { size: 3, distance: 'Cosine' },
        geo: { size: 2, distance: 'Euclid' },
        hist: { size: 5, distance: 'Manhattan' },
    };
    assert.equal(await client.createCollection(name, { vectors }), true);
    const info = await client.getCollection(name);
    assert.deepEqual(info.config.params.vectors, vectors);
    await client.upsert(name, {
        wait: true,
        points: [{ id: 1, vector: { img: [1, 2, 3, 4], txt: [1, 0, 0], geo: [0.5, 0.5], hist: [1, 1, 1, 1, 1] } }],
    });
    const [p] = await client.retrieve(name, { ids: [1], with_vector: true });
    assert.deepEqual(Object.keys(p.vector).sort(), ['geo', 'hist', 'img', 'txt']);
    assert.deepEqual(p.vector.img, [1, 2, 3, 4]);
    assert.deepEqual(p.vector.geo, [0.5, 0.5]);
    assert.equal((await client.getCollection(name)).points_count, 1);
    await client.deleteCollection(name);
});

// Qdrant's documentation names its vectors "image" and "text"; a map of
// named vectors must not be mistaken for an inference object.
test('named vectors called "image" and "text" (as in Qdrant\'s documentation) can be upserted and queried', async () => {
    const name = uniqueName('named_doc');
    await client.createCollection(name, {
        vectors: { image: { size: 4, distance: 'Dot' }, text: { size: 3, distance: 'Cosine' } },
    });
    await client.upsert(name, {
        wait: true,
        points: [
            { id: 1, vector: { image: [1, 2, 3, 4], text: [1, 0, 0] } },
            { id: 2, vector: { image: [0, 0, 0, 1], text: [0, 1, 0] } },
        ],
    });
    const { points } = await client.query(name, { query: [0, 0, 0, 1], using: 'image', limit: 2 });
    assert.deepEqual(points.map((p) => p.id), [1, 2]);
    await client.deleteCollection(name);
});

test('createCollection accepts Qdrant config sections and getCollection echoes them', async () => {
    const name = uniqueName('config');
    assert.equal(await client.createCollection(name, {
        vectors: { size: 4, distance: 'Cosine' },
        shard_number: 1,
        replication_factor: 1,
        write_consistency_factor: 1,
        on_disk_payload: false,
        hnsw_config: { m: 32, ef_construct: 64 },
        optimizers_config: { indexing_threshold: 20000 },
        wal_config: { wal_capacity_mb: 16 },
    }), true);
    const { config } = await client.getCollection(name);
    assert.equal(config.params.on_disk_payload, false);
    assert.equal(config.hnsw_config.m, 32);
    assert.equal(config.hnsw_config.ef_construct, 64);
    assert.equal(config.optimizer_config.indexing_threshold, 20000);
    assert.equal(config.wal_config.wal_capacity_mb, 16);
    await client.deleteCollection(name);
});

test('getCollections lists created collections and drops deleted ones', async () => {
    const names = [uniqueName('list'), uniqueName('list'), uniqueName('list')];
    for (const n of names) await client.createCollection(n, { vectors: { size: 2, distance: 'Dot' } });
    let listed = (await client.getCollections()).collections.map((c) => c.name);
    for (const n of names) assert.ok(listed.includes(n), `${n} missing from ${listed}`);
    await client.deleteCollection(names[1]);
    listed = (await client.getCollections()).collections.map((c) => c.name);
    assert.ok(listed.includes(names[0]) && listed.includes(names[2]));
    assert.ok(!listed.includes(names[1]), `${names[1]} still listed after delete`);
    await client.deleteCollection(names[0]);
    await client.deleteCollection(names[2]);
});

test('collectionExists is true for an existing collection and false otherwise', async () => {
    const name = uniqueName('exists');
    assert.deepEqual(await client.collectionExists(name), { exists: false });
    await client.createCollection(name, { vectors: { size: 2, distance: 'Euclid' } });
    assert.deepEqual(await client.collectionExists(name), { exists: true });
    await client.deleteCollection(name);
    assert.deepEqual(await client.collectionExists(name), { exists: false });
});

test('deleteCollection removes the collection and its points; a new one of the same name starts empty', async () => {
    const name = uniqueName('delete');
    await client.createCollection(name, { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert(name, { wait: true, points: [{ id: 1, vector: [1, 2] }, { id: 2, vector: [3, 4] }] });
    assert.equal(await client.deleteCollection(name), true);
    await expectStatus(client.getCollection(name), 404, 'getCollection after delete');
    await client.createCollection(name, { vectors: { size: 3, distance: 'Cosine' } });
    const info = await client.getCollection(name);
    assert.equal(info.points_count, 0);
    assert.deepEqual(info.config.params.vectors, { size: 3, distance: 'Cosine' });
    assert.equal((await client.count(name)).count, 0);
    await client.deleteCollection(name);
});

test('updateCollection changes optimizer, hnsw and params settings and keeps the data', async () => {
    const name = uniqueName('update');
    await client.createCollection(name, { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert(name, { wait: true, points: [{ id: 7, vector: [1, 1], payload: { a: 1 } }] });
    assert.equal(await client.updateCollection(name, {
        optimizers_config: { indexing_threshold: 12345, deleted_threshold: 0.5 },
        hnsw_config: { m: 48 },
        params: { on_disk_payload: false },
    }), true);
    const info = await client.getCollection(name);
    assert.equal(info.config.optimizer_config.indexing_threshold, 12345);
    assert.equal(info.config.optimizer_config.deleted_threshold, 0.5);
    assert.equal(info.config.hnsw_config.m, 48);
    assert.equal(info.config.params.on_disk_payload, false);
    assert.deepEqual(info.config.params.vectors, { size: 2, distance: 'Dot' });
    assert.equal(info.points_count, 1);
    const [p] = await client.retrieve(name, { ids: [7] });
    assert.deepEqual(p.payload, { a: 1 });
    await expectStatus(client.updateCollection(uniqueName('missing'), { optimizers_config: { indexing_threshold: 1 } }),
        404, 'updateCollection of a missing collection');
    await client.deleteCollection(name);
});
