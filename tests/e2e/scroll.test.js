// Scroll through 10,000 points page by page (limit 256): every id exactly
// once, in Qdrant's id order (integers ascending, then UUIDs).
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { makeClient, uniqueName, makeRng } from './lib/harness.js';
import { compareIds, idKey, matchFilter } from './lib/reference.js';

const client = makeClient();
const name = uniqueName('scroll');
const N = 10_000;
const rng = makeRng();
const points = [];

before(async () => {
    await client.createCollection(name, { vectors: { size: 4, distance: 'Dot' } });
    // 9,900 integer ids spread over a wide range plus 100 UUIDs, inserted in
    // a shuffled order, half in the points form and half in the batch form
    const ids = new Set();
    while (ids.size < N - 100) ids.add(rng.int(0, 5_000_000));
    while (ids.size < N) ids.add(rng.uuid());
    for (const id of rng.sample([...ids], N))
        points.push({ id, vector: [rng.next(), rng.next(), rng.next(), rng.next()], payload: { bucket: rng.int(0, 9) } });
    for (let i = 0; i < N; i += 1000) {
        const chunk = points.slice(i, i + 1000);
        if ((i / 1000) % 2 === 0) {
            await client.upsert(name, { wait: true, points: chunk });
        } else {
            await client.upsert(name, {
                wait: true,
                batch: { ids: chunk.map((p) => p.id), vectors: chunk.map((p) => p.vector), payloads: chunk.map((p) => p.payload) },
            });
        }
    }
});

after(async () => {
    await client.deleteCollection(name);
});

async function scrollPages(opts) {
    const seen = [];
    let offset, pages = 0;
    for (;;) {
        const res = await client.scroll(name, { limit: 256, with_payload: false, ...opts, offset });
        pages++;
        assert.ok(res.points.length <= 256, `page ${pages} has ${res.points.length} points`);
        assert.ok(pages <= N / 256 + 2, 'scroll does not end');
        seen.push(...res.points);
        if (res.next_page_offset == null) break;
        assert.equal(res.points.length, 256, `a page before the last (page ${pages}) is short`);
        offset = res.next_page_offset;
    }
    return { seen, pages };
}

test('scroll through 10,000 points with limit 256: each id exactly once, in id order', async () => {
    assert.equal((await client.count(name)).count, N);
    const { seen, pages } = await scrollPages({});
    assert.equal(pages, Math.ceil(N / 256));
    const keys = seen.map((p) => idKey(p.id));
    assert.equal(new Set(keys).size, keys.length, 'an id was returned twice');
    assert.equal(keys.length, N);
    const want = points.map((p) => p.id).sort(compareIds);
    assert.deepEqual(seen.map((p) => p.id), want);
});

test('scroll pages carry payloads and vectors on request, and next_page_offset is the next id', async () => {
    const byId = new Map(points.map((p) => [idKey(p.id), p]));
    const first = await client.scroll(name, { limit: 256, with_payload: true, with_vector: true });
    for (const p of first.points) {
        assert.deepEqual(p.payload, byId.get(idKey(p.id)).payload);
        assert.equal(p.vector.length, 4);
        p.vector.forEach((x, i) => assert.ok(Math.abs(x - byId.get(idKey(p.id)).vector[i]) < 1e-6));
    }
    const second = await client.scroll(name, { limit: 1, offset: first.next_page_offset });
    assert.equal(second.points[0].id, first.next_page_offset);
});

test('scroll with a filter pages through exactly the matching points', async () => {
    const filter = { must: [{ key: 'bucket', range: { gte: 3, lt: 6 } }] };
    const { seen } = await scrollPages({ filter, with_payload: true });
    const want = points.filter((p) => matchFilter(filter, p)).map((p) => p.id).sort(compareIds);
    assert.deepEqual(seen.map((p) => p.id), want);
    for (const p of seen) assert.ok(p.payload.bucket >= 3 && p.payload.bucket < 6);
});
