// Qdrant's filter language: the server's count, scroll and query answers
// against the brute-force evaluator of lib/reference.js, over random
// payloads with awkward shapes.  A small hand-written collection checks
// the evaluator itself against expectations written out by hand.
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { makeClient, uniqueName, makeRng, upsertAll } from './lib/harness.js';
import { matchFilter, compareIds, rank, checkRanking } from './lib/reference.js';
import { randomPayload, randomCondition, randomFilter, CONDITION_KINDS } from './lib/gen.js';

const client = makeClient();
const rng = makeRng();
const N = 600;
const name = uniqueName('filter');
const points = [];
let ids = [];

before(async () => {
    await client.createCollection(name, { vectors: { size: 4, distance: 'Dot' } });
    ids = rng.sample(Array.from({ length: 3000 }, (_, i) => i), N - 20);
    for (let i = 0; i < 20; i++) ids.push(rng.uuid());
    for (const id of ids)
        points.push({ id, vector: Array.from({ length: 4 }, () => rng.int(-8, 8) / 8), payload: randomPayload(rng) });
    await upsertAll(client, name, points, 300);
});

after(async () => {
    await client.deleteCollection(name);
});

// Check a filter with count and scroll; returns a failure text or null.
async function check(filter, coll = name, pts = points) {
    const want = pts.filter((p) => matchFilter(filter, p)).map((p) => p.id).sort(compareIds);
    let count, got;
    try {
        count = (await client.count(coll, { filter, exact: true })).count;
        const res = await client.scroll(coll, { filter, limit: pts.length + 1, with_payload: false });
        got = res.points.map((p) => p.id);
    } catch (e) {
        return `${JSON.stringify(filter)}\n    -> HTTP ${e.status}: ${JSON.stringify(e.data ?? e.message)}`;
    }
    const gotSet = new Set(got.map(String)), wantSet = new Set(want.map(String));
    const extra = got.filter((id) => !wantSet.has(String(id)));
    const missing = want.filter((id) => !gotSet.has(String(id)));
    if (count === want.length && extra.length === 0 && missing.length === 0 && got.length === want.length) {
        const ordered = got.every((id, i) => i === 0 || compareIds(got[i - 1], id) < 0);
        return ordered ? null : `${JSON.stringify(filter)}\n    -> scroll not in id order`;
    }
    const show = (list) => list.slice(0, 5).map((id) => {
        const p = pts.find((x) => String(x.id) === String(id));
        return `${id} ${JSON.stringify(p.payload)}`;
    }).join('\n        ');
    return `${JSON.stringify(filter)}\n    -> count ${count}, scroll ${got.length}, expected ${want.length}` +
        (extra.length ? `\n      matched but should not (${extra.length}):\n        ${show(extra)}` : '') +
        (missing.length ? `\n      should match but did not (${missing.length}):\n        ${show(missing)}` : '');
}

function report(failures, total) {
    assert.equal(failures.length, 0,
        `${failures.length} of ${total} filters disagree with the reference; first ones:\n  ` + failures.slice(0, 4).join('\n  '));
}

// Payloads and expected ids written out by hand: these check the reference
// evaluator as much as the server.
const HAND = [
    { id: 1, payload: { color: 'red', n: 1, tags: ['a', 'b'], items: [{ k: 'a', v: 1 }, { k: 'b', v: 5 }], meta: { a: 1, b: { c: 'x' } }, ts: '2024-03-01T10:00:00Z', text: 'quick brown fox' } },
    { id: 2, payload: { color: 'green', n: 2.5, tags: [], items: [{ k: 'a', v: 5 }], meta: [{ a: 1 }], ts: '2024-03-01 12:00:00', text: 'lazy dog' } },
    { id: 3, payload: { color: null, n: [1, 2, 3], tags: null, items: [], meta: { a: 2, b: null }, ts: '2024-03-01T12:00:00+02:00' } },
    { id: 4, payload: { color: ['red', 'blue'], n: '1', tags: ['c', null], meta: { b: { c: null } }, ts: 'not a date' } },
    { id: 5, payload: {} },
    { id: 6, payload: { color: 3, n: null, tags: ['a'], items: { k: 'a', v: 5 }, meta: null, ts: '2024-03-02' } },
];
const HAND_CASES = [
    [{ must: [{ key: 'color', match: { value: 'red' } }] }, [1, 4]],
    [{ must: [{ key: 'n', match: { value: 1 } }] }, [1, 3]],
    [{ must: [{ key: 'n', match: { any: [2, 3] } }] }, [3]],
    [{ must: [{ key: 'color', match: { except: ['red'] } }] }, [2, 4, 6]],
    [{ must: [{ key: 'n', match: { except: [1] } }] }, [2, 3, 4]],
    [{ must: [{ key: 'text', match: { text: 'brown' } }] }, [1]],
    [{ must: [{ key: 'n', range: { gte: 2 } }] }, [2, 3]],
    [{ must: [{ key: 'ts', range: { gte: '2024-03-01T10:00:00Z', lt: '2024-03-01T12:00:00Z' } }] }, [1, 3]],
    [{ must: [{ key: 'ts', range: { gt: '2024-03-01T23:00:00Z' } }] }, [6]],
    [{ must: [{ is_empty: { key: 'tags' } }] }, [2, 3, 5]],
    [{ must: [{ is_empty: { key: 'meta.b.c' } }] }, [2, 3, 4, 5, 6]],
    [{ must: [{ is_null: { key: 'color' } }] }, [3]],
    [{ must: [{ is_null: { key: 'tags' } }] }, [3]],
    [{ must: [{ is_null: { key: 'meta.b.c' } }] }, [4]],
    [{ must: [{ has_id: [2, 5, 77] }] }, [2, 5]],
    [{ must: [{ key: 'tags', values_count: { gte: 2 } }] }, [1, 4]],
    [{ must: [{ key: 'tags', values_count: { lt: 1 } }] }, [2, 3, 5]],
    [{ must: [{ key: 'items[].v', range: { gte: 5 } }] }, [1, 2]],
    [{ must: [{ key: 'items[].k', match: { value: 'a' } }, { key: 'items[].v', range: { gte: 5 } }] }, [1, 2]],
    [{ must: [{ nested: { key: 'items', filter: { must: [{ key: 'k', match: { value: 'a' } }, { key: 'v', range: { gte: 5 } }] } } }] }, [2]],
    [{ must: [{ key: 'items[0].k', match: { value: 'a' } }] }, [1, 2]],
    [{ must: [{ key: 'meta.a', match: { value: 1 } }] }, [1]],
    [{ must: [{ key: 'meta[].a', match: { value: 1 } }] }, [2]],
    [{ should: [{ key: 'color', match: { value: 'green' } }, { has_id: [6] }] }, [2, 6]],
    [{ should: [] }, []],
    [{ must_not: [{ key: 'color', match: { any: ['red', 'green'] } }] }, [3, 5, 6]],
    [{ min_should: { conditions: [{ key: 'color', match: { value: 'red' } }, { key: 'n', match: { value: 1 } }, { is_empty: { key: 'tags' } }], min_count: 2 } }, [1, 3]],
    [{ must: [{ should: [{ has_id: [1] }, { has_id: [2] }] }, { must_not: [{ has_id: [2] }] }] }, [1]],
];

test('hand-written filter cases of every kind give the expected ids', async () => {
    const coll = uniqueName('filter_hand');
    await client.createCollection(coll, { vectors: { size: 2, distance: 'Dot' } });
    await client.upsert(coll, { wait: true, points: HAND.map((p) => ({ ...p, vector: [p.id, 1] })) });
    const failures = [];
    for (const [filter, want] of HAND_CASES) {
        // the reference agrees with the hand-written answer ...
        const ref = HAND.filter((p) => matchFilter(filter, p)).map((p) => p.id);
        assert.deepEqual(ref, want, `reference evaluator on ${JSON.stringify(filter)}`);
        // ... and the server with both
        const f = await check(filter, coll, HAND);
        if (f) failures.push(f);
    }
    await client.deleteCollection(coll);
    report(failures, HAND_CASES.length);
});

for (const kind of CONDITION_KINDS) {
    test(`filter condition ${kind} agrees with the brute-force evaluator (count and scroll)`, async () => {
        const failures = [];
        let nontrivial = 0, total = 0;
        for (let i = 0; i < 30; i++) {
            const cond = randomCondition(rng, kind, ids);
            for (const filter of [{ must: [cond] }, { must_not: [cond] }]) {
                const n = points.filter((p) => matchFilter(filter, p)).length;
                if (n > 0 && n < N) nontrivial++;
                total++;
                const f = await check(filter);
                if (f) failures.push(f);
            }
        }
        assert.ok(nontrivial >= total / 4, `only ${nontrivial} of ${total} ${kind} filters split the data: the test data is too uniform`);
        report(failures, total);
    });
}

test('random compound filters (must, should, must_not, min_should, sub-filters, nested) agree with the evaluator', async () => {
    const failures = [];
    const total = 300;
    for (let i = 0; i < total; i++) {
        const f = await check(randomFilter(rng, ids));
        if (f) failures.push(f);
    }
    report(failures, total);
});

test('filtered queries return the brute-force top 10 among the matching points', async () => {
    const failures = [];
    const total = 60;
    for (let i = 0; i < total; i++) {
        const filter = randomFilter(rng, ids);
        const q = Array.from({ length: 4 }, () => rng.int(-8, 8) / 8);
        const full = rank('Dot', points, q, { filter });
        try {
            const res = await client.query(name, { query: q, filter, limit: 10 });
            checkRanking('Dot', res.points, full.slice(0, 10), `query with ${JSON.stringify(filter)}`, full);
        } catch (e) {
            failures.push(e.status ? `${JSON.stringify(filter)} -> HTTP ${e.status}: ${JSON.stringify(e.data)}` : e.message);
        }
    }
    report(failures, total);
});

test('delete and setPayload by a random filter touch exactly the matching points', async () => {
    const coll = uniqueName('filter_write');
    await client.createCollection(coll, { vectors: { size: 4, distance: 'Dot' } });
    const local = points.slice(0, 300).map((p) => JSON.parse(JSON.stringify(p)));
    await upsertAll(client, coll, local, 300);
    let filter;
    do {
        filter = randomFilter(rng, ids);
    } while (!(local.filter((p) => matchFilter(filter, p)).length > 5));
    await client.setPayload(coll, { wait: true, filter, payload: { touched: true } });
    const touched = local.filter((p) => matchFilter(filter, p)).map((p) => p.id).sort(compareIds);
    const got = (await client.scroll(coll, { filter: { must: [{ key: 'touched', match: { value: true } }] }, limit: 1000 })).points;
    assert.deepEqual(got.map((p) => p.id), touched, `setPayload by ${JSON.stringify(filter)}`);
    await client.delete(coll, { wait: true, filter });
    const left = (await client.scroll(coll, { limit: 1000, with_payload: false })).points.map((p) => p.id);
    const want = local.filter((p) => !touched.some((t) => String(t) === String(p.id))).map((p) => p.id).sort(compareIds);
    assert.deepEqual(left, want, `delete by ${JSON.stringify(filter)}`);
    await client.deleteCollection(coll);
});
