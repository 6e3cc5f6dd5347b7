// Nearest-neighbour queries (query API and the legacy search API) checked
// against a brute-force ranking computed here, for each distance.
//
// Vectors have components k/8 (k integer), so Dot, Euclid and Manhattan
// scores are exact in float32 and equal scores are real ties that must be
// broken by the smaller id; duplicated vectors make such ties on purpose.
// Cosine vectors are never parallel unless identical, for the same reason.
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { makeClient, uniqueName, makeRng, upsertAll } from './lib/harness.js';
import {
    METRICS, rank, checkRanking, compareIds, compareScores, tolerance, normalize, selectPayload, idKey,
} from './lib/reference.js';

const client = makeClient();
const DIM = 8;
const N = 400;
const rng = makeRng();
const collections = {}; // metric -> {name, points}
let namedColl; // {name, points}: one vector per metric

function gridVector(metric) {
    for (;;) {
        const v = Array.from({ length: DIM }, () => rng.int(-8, 8) / 8);
        if (metric !== 'Cosine' || v.some((x) => x !== 0)) return v;
    }
}

// N points: ints and UUIDs, with duplicated vectors (ties).
function makePoints(metric) {
    const points = [];
    const used = new Set();
    const cosKeys = new Map(); // normalised direction -> exact vector text
    const ids = rng.sample(Array.from({ length: 2000 }, (_, i) => i + 1), N - 20);
    for (let i = 0; i < 20; i++) ids.push(rng.uuid());
    for (const [i, id] of ids.entries()) {
        let vector;
        if (i >= 40 && rng.chance(0.12)) {
            vector = rng.pick(points).vector.slice(); // a duplicate: a tie
        } else {
            for (;;) {
                vector = gridVector(metric);
                if (metric !== 'Cosine') break;
                const dir = normalize(vector).map((x) => x.toFixed(9)).join(',');
                const exact = vector.join(',');
                if (!cosKeys.has(dir) || cosKeys.get(dir) === exact) {
                    cosKeys.set(dir, exact);
                    break;
                }
            }
        }
        used.add(idKey(id));
        points.push({
            id,
            vector,
            payload: {
                g: i % 5,
                name: `p${i}`,
                meta: { a: rng.int(0, 9), b: { c: rng.pick(['x', 'y', 'z']) } },
                text: rng.pick(['red fox', 'blue whale', 'green frog']),
            },
        });
    }
    return points;
}

before(async () => {
    for (const metric of METRICS) {
        const name = uniqueName(`search_${metric.toLowerCase()}`);
        await client.createCollection(name, { vectors: { size: DIM, distance: metric } });
        const points = makePoints(metric);
        await upsertAll(client, name, points, 200);
        collections[metric] = { name, points };
    }
    // one collection with a named vector per distance
    const name = uniqueName('search_named');
    await client.createCollection(name, {
        vectors: Object.fromEntries(METRICS.map((m) => [m.toLowerCase(), { size: DIM, distance: m }])),
    });
    const points = collections.Cosine.points.map((p, i) => ({
        id: p.id,
        vector: Object.fromEntries(METRICS.map((m) => [m.toLowerCase(), collections[m].points[i].vector])),
        payload: p.payload,
    }));
    await upsertAll(client, name, points, 200);
    namedColl = { name, points };
});

after(async () => {
    for (const { name } of Object.values(collections)) await client.deleteCollection(name);
    if (namedColl) await client.deleteCollection(namedColl.name);
});

const asPoints = (res) => (Array.isArray(res) ? res : res.points);

for (const metric of METRICS) {
    test(`query and search by vector match the brute-force ranking (${metric})`, async () => {
        const { name, points } = collections[metric];
        for (let q = 0; q < 12; q++) {
            const vector = q < 4 ? rng.pick(points).vector : gridVector(metric); // q < 4: exact hits and their duplicates
            const full = rank(metric, points, vector);
            for (const limit of [1, 10, 60]) {
                const want = full.slice(0, limit);
                const viaQuery = await client.query(name, { query: vector, limit });
                checkRanking(metric, viaQuery.points, want, `${metric} query #${q} limit ${limit}`, full);
                const viaSearch = await client.search(name, { vector, limit });
                checkRanking(metric, viaSearch, want, `${metric} search #${q} limit ${limit}`, full);
            }
            if (q % 4 === 0) {
                const viaNearest = await client.query(name, { query: { nearest: vector }, limit: 10 });
                checkRanking(metric, viaNearest.points, full.slice(0, 10), `${metric} query {nearest} #${q}`, full);
            }
        }
        // default limit is 10
        const vector = gridVector(metric);
        const res = await client.query(name, { query: vector });
        checkRanking(metric, res.points, rank(metric, points, vector).slice(0, 10), `${metric} default limit`);
    });

    test(`query and search with filter, score_threshold and offset match the brute-force ranking (${metric})`, async () => {
        const { name, points } = collections[metric];
        const filters = [
            { must: [{ key: 'g', match: { any: [1, 3] } }] },
            { must_not: [{ key: 'meta.b.c', match: { value: 'x' } }], must: [{ key: 'meta.a', range: { gte: 2, lte: 7 } }] },
            { should: [{ key: 'text', match: { text: 'fox' } }, { has_id: points.slice(0, 50).map((p) => p.id) }] },
        ];
        for (let q = 0; q < 6; q++) {
            const vector = gridVector(metric);
            const full = rank(metric, points, vector);
            for (const filter of filters) {
                const fr = rank(metric, points, vector, { filter });
                checkRanking(metric, (await client.query(name, { query: vector, filter, limit: 15 })).points,
                    fr.slice(0, 15), `${metric} query with filter ${JSON.stringify(filter)}`, fr);
                checkRanking(metric, await client.search(name, { vector, filter, limit: 15 }),
                    fr.slice(0, 15), `${metric} search with filter ${JSON.stringify(filter)}`, fr);
            }
            // a threshold strictly between two distinct scores
            let j = rng.int(3, 30);
            while (j < full.length - 1 && Math.abs(full[j].score - full[j + 1].score) <= 4 * tolerance(full[j].score)) j++;
            const threshold = (full[j].score + full[j + 1].score) / 2;
            const above = rank(metric, points, vector, { threshold });
            assert.equal(above.length, j + 1, 'reference threshold cut');
            checkRanking(metric, (await client.query(name, { query: vector, score_threshold: threshold, limit: 100 })).points,
                above, `${metric} query score_threshold ${threshold}`, full);
            checkRanking(metric, await client.search(name, { vector, score_threshold: threshold, limit: 100 }),
                above, `${metric} search score_threshold ${threshold}`, full);
            // offset: the window after the first `offset` results
            for (const [offset, limit] of [[7, 5], [0, 3], [30, 20], [N - 5, 10]]) {
                const want = full.slice(offset, offset + limit);
                checkRanking(metric, (await client.query(name, { query: vector, offset, limit })).points,
                    want, `${metric} query offset ${offset} limit ${limit}`, full);
                checkRanking(metric, await client.search(name, { vector, offset, limit }),
                    want, `${metric} search offset ${offset} limit ${limit}`, full);
            }
            // all together
            const filter = filters[q % filters.length];
            const fr = rank(metric, points, vector, { filter });
            const t = (fr[Math.min(20, fr.length - 1)].score + fr[Math.min(21, fr.length - 1)].score) / 2;
            const frT = rank(metric, points, vector, { filter, threshold: t });
            checkRanking(metric, (await client.query(name, { query: vector, filter, score_threshold: t, offset: 2, limit: 10 })).points,
                frT.slice(2, 12), `${metric} query filter+threshold+offset`, fr);
        }
    });

    test(`query by point id ranks the neighbours of that point's vector, without the point itself (${metric})`, async () => {
        const { name, points } = collections[metric];
        for (const p of [...rng.sample(points, 8), points.find((x) => typeof x.id === 'string')]) {
            const full = rank(metric, points, p.vector, { exclude: p.id });
            checkRanking(metric, (await client.query(name, { query: p.id, limit: 10 })).points,
                full.slice(0, 10), `${metric} query by id ${p.id}`, full);
            const filter = { must: [{ key: 'g', match: { value: 2 } }] };
            const fr = rank(metric, points, p.vector, { exclude: p.id, filter });
            checkRanking(metric, (await client.query(name, { query: p.id, filter, limit: 10 })).points,
                fr.slice(0, 10), `${metric} query by id ${p.id} with filter`, fr);
        }
    });
}

test('queryBatch and searchBatch answer each request with its brute-force ranking', async () => {
    for (const metric of METRICS) {
        const { name, points } = collections[metric];
        const reqs = [0, 1, 2].map((i) => ({
            vector: gridVector(metric),
            filter: i === 1 ? { must: [{ key: 'g', match: { value: 0 } }] } : undefined,
            limit: 5 + i,
        }));
        const queried = await client.queryBatch(name, {
            searches: reqs.map((r) => ({ query: r.vector, filter: r.filter, limit: r.limit })),
        });
        const searched = await client.searchBatch(name, { searches: reqs });
        assert.equal(queried.length, 3);
        assert.equal(searched.length, 3);
        reqs.forEach((r, i) => {
            const full = rank(metric, points, r.vector, { filter: r.filter });
            checkRanking(metric, queried[i].points, full.slice(0, r.limit), `${metric} queryBatch[${i}]`, full);
            checkRanking(metric, searched[i], full.slice(0, r.limit), `${metric} searchBatch[${i}]`, full);
        });
    }
});

test('query with using and search with a named vector match the brute-force ranking of each named vector', async () => {
    const { name, points } = namedColl;
    for (const metric of METRICS) {
        const using = metric.toLowerCase();
        const mine = points.map((p) => ({ id: p.id, vector: p.vector[using], payload: p.payload }));
        for (let q = 0; q < 5; q++) {
            const vector = gridVector(metric);
            const full = rank(metric, mine, vector);
            checkRanking(metric, (await client.query(name, { query: vector, using, limit: 10 })).points,
                full.slice(0, 10), `named ${using} query`, full);
            checkRanking(metric, await client.search(name, { vector: { name: using, vector }, limit: 10 }),
                full.slice(0, 10), `named ${using} search`, full);
            const p = rng.pick(mine);
            const byId = rank(metric, mine, p.vector, { exclude: p.id });
            checkRanking(metric, (await client.query(name, { query: p.id, using, limit: 10 })).points,
                byId.slice(0, 10), `named ${using} query by id ${p.id}`, byId);
        }
    }
    // with_vector as a list of names returns only those vectors
    const { points: hits } = await client.query(name, { query: gridVector('Dot'), using: 'dot', limit: 3, with_vector: ['euclid', 'cosine'] });
    for (const h of hits) {
        assert.deepEqual(Object.keys(h.vector).sort(), ['cosine', 'euclid']);
        const src = points.find((p) => idKey(p.id) === idKey(h.id));
        assert.deepEqual(h.vector.euclid, src.vector.euclid);
    }
});

test('query and search return payloads by selector (true, false, key list, include, exclude) and vectors on request', async () => {
    const metric = 'Dot';
    const { name, points } = collections[metric];
    const byId = new Map(points.map((p) => [idKey(p.id), p]));
    const vector = gridVector(metric);
    const selectors = [true, false, ['g', 'name'], { include: ['meta.b', 'text'] }, { exclude: ['meta.a', 'name'] }, ['missing']];
    for (const with_payload of selectors) {
        for (const res of [
            (await client.query(name, { query: vector, limit: 5, with_payload })).points,
            await client.search(name, { vector, limit: 5, with_payload }),
        ]) {
            assert.equal(res.length, 5);
            for (const h of res) {
                const want = selectPayload(byId.get(idKey(h.id)).payload, with_payload);
                if (want === null) assert.ok(h.payload == null, `with_payload false: ${JSON.stringify(h.payload)}`);
                else assert.deepEqual(h.payload, want, `with_payload ${JSON.stringify(with_payload)}`);
            }
        }
    }
    // query's default is no payload; search's client default is with_payload true
    for (const h of (await client.query(name, { query: vector, limit: 3 })).points) assert.ok(h.payload == null);
    for (const h of await client.search(name, { vector, limit: 3 })) assert.deepEqual(h.payload, byId.get(idKey(h.id)).payload);
    // vectors
    for (const h of (await client.query(name, { query: vector, limit: 5, with_vector: true })).points)
        assert.deepEqual(h.vector, byId.get(idKey(h.id)).vector);
    for (const h of await client.search(name, { vector, limit: 5, with_vector: true }))
        assert.deepEqual(h.vector, byId.get(idKey(h.id)).vector);
    for (const h of (await client.query(name, { query: vector, limit: 5, with_vector: false })).points)
        assert.ok(h.vector == null);
    // Cosine collections give back the stored (normalised) vector
    const cos = collections.Cosine;
    const cosById = new Map(cos.points.map((p) => [idKey(p.id), p]));
    for (const h of (await client.query(cos.name, { query: gridVector('Cosine'), limit: 5, with_vector: true })).points) {
        const w = normalize(cosById.get(idKey(h.id)).vector);
        h.vector.forEach((x, i) => assert.ok(Math.abs(x - w[i]) < 1e-6, `normalised vector of ${h.id}`));
    }
});

test('query without a query vector returns points in id order, with filter, offset and limit', async () => {
    const { name, points } = collections.Euclid;
    const sorted = points.slice().sort((a, b) => compareIds(a.id, b.id));
    const res = await client.query(name, { limit: 20, with_payload: true });
    assert.deepEqual(res.points.map((p) => p.id), sorted.slice(0, 20).map((p) => p.id));
    const filter = { must: [{ key: 'g', match: { value: 4 } }] };
    const want = sorted.filter((p) => p.payload.g === 4);
    const res2 = await client.query(name, { filter, offset: 5, limit: 10 });
    assert.deepEqual(res2.points.map((p) => p.id), want.slice(5, 15).map((p) => p.id));
});

test('results are ordered best first for every distance (higher for Cosine/Dot, lower for Euclid/Manhattan), exact hits score best', async () => {
    for (const metric of METRICS) {
        const { name, points } = collections[metric];
        const q = gridVector(metric);
        const res = (await client.query(name, { query: q, limit: 50 })).points;
        for (let i = 1; i < res.length; i++)
            assert.ok(compareScores(metric, res[i - 1].score, res[i].score) <= 0, `${metric}: ${res[i - 1].score} before ${res[i].score}`);
        // a stored vector used as the query is the best possible hit
        // (Dot has no best possible score: a longer vector scores higher)
        if (metric !== 'Dot') {
            const p = points[0];
            const hit = (await client.query(name, { query: p.vector, limit: 1 })).points[0];
            const best = metric === 'Cosine' ? 1 : 0;
            assert.ok(Math.abs(hit.score - best) <= tolerance(best), `${metric}: exact hit scores ${hit.score}, expected ${best}`);
        }
    }
});
