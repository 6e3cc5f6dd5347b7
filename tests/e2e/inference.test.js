// Qdrant Documents ({text, model}) through the official client: the server
// embeds them with its built-in veclog/hash-* models, in upserts (points
// and batch forms, named vectors) and queries (query, nearest, prefetch).
import assert from 'node:assert/strict';
import { test, after } from 'node:test';
import { makeClient, uniqueName } from './lib/harness.js';

const client = makeClient();
const created = [];
const doc = (text, model = 'veclog/hash-256') => ({ text, model });

after(async () => {
    for (const name of created) await client.deleteCollection(name).catch(() => {});
});

test('documents are embedded on upsert and query', async () => {
    const name = uniqueName('infer');
    created.push(name);
    await client.createCollection(name, { vectors: { size: 256, distance: 'Cosine' } });
    await client.upsert(name, {
        wait: true,
        points: [
            { id: 1, vector: doc('the quick brown fox jumps over the lazy dog'), payload: { k: 'fox' } },
            { id: 2, vector: doc('lorem ipsum dolor sit amet') },
        ],
    });
    await client.upsert(name, {
        wait: true,
        batch: { ids: [3, 4], vectors: [doc('kafka topics and partitions'), doc('tomato soup with basil')] },
    });
    assert.equal((await client.count(name, { exact: true })).count, 4);

    let { points } = await client.query(name, { query: doc('a quick brown fox jumped over a dog'), limit: 2 });
    assert.equal(points[0].id, 1);
    ({ points } = await client.query(name, { query: { nearest: doc('basil and tomato soup') }, limit: 1 }));
    assert.equal(points[0].id, 4);
    ({ points } = await client.query(name, {
        prefetch: [{ query: doc('partitions of kafka topics'), limit: 3 }],
        query: doc('kafka'),
        limit: 1,
    }));
    assert.equal(points[0].id, 3);

    // a stored vector is the unit-length embedding, not the text
    const [rec] = await client.retrieve(name, { ids: [2], with_vector: true });
    assert.equal(rec.vector.length, 256);
    const norm = Math.sqrt(rec.vector.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-4);

    // unknown model and dim mismatch: 400, nothing written
    await assert.rejects(
        client.upsert(name, { wait: true, points: [{ id: 9, vector: doc('x', 'no/such') }] }),
        (e) => e.status === 400 && /no\/such/.test(JSON.stringify(e.data ?? e.message)),
    );
    await assert.rejects(
        client.upsert(name, { wait: true, points: [{ id: 9, vector: doc('x', 'veclog/hash-128') }] }),
        (e) => e.status === 400,
    );
    assert.equal((await client.count(name, { exact: true })).count, 4);
});

test('named vectors take documents of their own models', async () => {
    const name = uniqueName('infer_named');
    created.push(name);
    await client.createCollection(name, {
        vectors: { title: { size: 128, distance: 'Cosine' }, body: { size: 512, distance: 'Dot' } },
    });
    await client.upsert(name, {
        wait: true,
        points: [
            { id: 1, vector: { title: doc('red apples', 'veclog/hash-128'), body: doc('an orchard in autumn', 'veclog/hash-512') } },
            { id: 2, vector: { title: doc('deep sea', 'veclog/hash-128'), body: doc('whales and coral reefs', 'veclog/hash-512') } },
        ],
    });
    const { points } = await client.query(name, {
        query: doc('coral reefs and whales', 'veclog/hash-512'), using: 'body', limit: 1,
    });
    assert.equal(points[0].id, 2);
});
