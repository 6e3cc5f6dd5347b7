// Random payloads with awkward shapes (missing keys, nulls, arrays, empty
// arrays, mixed types, nested objects and arrays of objects) and random
// filters over them using every kind of condition the reference evaluates.
const COLORS = ['red', 'green', 'blue', 'Red', 'yellow'];
const WORDS = ['alpha', 'beta', 'gamma', 'apple', 'pie', 'quick', 'brown', 'fox', 'lazy'];
const TAGS = ['a', 'b', 'c', 'd', 'e'];
const KS = ['a', 'b', 'c'];

// March 2024, in the forms Qdrant accepts for datetime payloads.
function datetime(rng) {
    const d = rng.int(1, 28), h = rng.int(0, 23), mi = rng.int(0, 59), s = rng.int(0, 59);
    const p = (n) => String(n).padStart(2, '0');
    const date = `2024-03-${p(d)}`;
    switch (rng.int(0, 6)) {
        case 0: return `${date}T${p(h)}:${p(mi)}:${p(s)}Z`;
        case 1: return `${date}T${p(h)}:${p(mi)}:${p(s)}.${String(rng.int(0, 999)).padStart(3, '0')}Z`;
        case 2: return `${date}T${p(h)}:${p(mi)}:${p(s)}+02:00`;
        case 3: return `${date}T${p(h)}:${p(mi)}:${p(s)}-05:30`;
        case 4: return `${date} ${p(h)}:${p(mi)}:${p(s)}`;
        case 5: return `${date}T${p(h)}:${p(mi)}`;
        default: return date;
    }
}

// A value or undefined (= key absent), by weights.
function oneOf(rng, choices) {
    const total = choices.reduce((s, [w]) => s + w, 0);
    let x = rng.next() * total;
    for (const [w, f] of choices) {
        if ((x -= w) < 0) return f();
    }
    return choices[choices.length - 1][1]();
}

export function randomPayload(rng) {
    const p = {};
    const put = (k, v) => {
        if (v !== undefined) p[k] = v;
    };
    put('color', oneOf(rng, [
        [50, () => rng.pick(COLORS)],
        [10, () => null],
        [15, () => Array.from({ length: rng.int(0, 3) }, () => rng.pick(COLORS))],
        [5, () => rng.int(0, 3)],
        [20, () => undefined],
    ]));
    put('n', oneOf(rng, [
        [45, () => rng.int(-3, 6)],
        [10, () => rng.int(-3, 6) + 0.5],
        [12, () => Array.from({ length: rng.int(0, 3) }, () => (rng.chance(0.1) ? null : rng.int(-3, 6)))],
        [8, () => null],
        [5, () => String(rng.int(0, 3))],
        [5, () => true],
        [15, () => undefined],
    ]));
    put('price', oneOf(rng, [[80, () => rng.int(0, 80) / 4], [20, () => undefined]]));
    put('flag', oneOf(rng, [[70, () => rng.chance(0.5)], [10, () => null], [20, () => undefined]]));
    put('text', oneOf(rng, [
        [70, () => Array.from({ length: rng.int(1, 3) }, () => rng.pick(WORDS)).join(' ')],
        [10, () => [rng.pick(WORDS), `${rng.pick(WORDS)} ${rng.pick(WORDS)}`]],
        [20, () => undefined],
    ]));
    put('ts', oneOf(rng, [
        [65, () => datetime(rng)],
        [10, () => [datetime(rng), datetime(rng)]],
        [5, () => 'not a date'],
        [20, () => undefined],
    ]));
    put('tags', oneOf(rng, [
        [55, () => rng.sample(TAGS, rng.int(1, 4))],
        [5, () => [rng.pick(TAGS), null]],
        [12, () => []],
        [10, () => null],
        [18, () => undefined],
    ]));
    put('items', oneOf(rng, [
        [55, () => Array.from({ length: rng.int(1, 3) }, () => {
            if (rng.chance(0.05)) return rng.int(0, 5); // not an object
            const o = {};
            if (rng.chance(0.9)) o.k = rng.pick(KS);
            if (rng.chance(0.9)) o.v = rng.chance(0.1) ? null : rng.int(0, 5);
            if (rng.chance(0.3)) o.tags = rng.sample(TAGS, rng.int(0, 2));
            return o;
        })],
        [10, () => []],
        [5, () => ({ k: rng.pick(KS), v: rng.int(0, 5) })], // an object, not an array
        [30, () => undefined],
    ]));
    put('meta', oneOf(rng, [
        [65, () => {
            const m = {};
            if (rng.chance(0.85)) m.a = rng.int(0, 4);
            if (rng.chance(0.85)) m.b = rng.chance(0.1) ? null : { c: rng.chance(0.1) ? null : rng.pick(['x', 'y', 'z']) };
            if (rng.chance(0.4)) m.list = Array.from({ length: rng.int(0, 3) }, () => rng.int(0, 4));
            return m;
        }],
        [5, () => [{ a: rng.int(0, 4) }]], // "meta.a" must not look inside an array
        [10, () => null],
        [20, () => undefined],
    ]));
    return p;
}

// ---- conditions -----------------------------------------------------------------

function bounds(rng, lo, hi, step = 1) {
    const b = {};
    const v = () => Math.round((lo + rng.next() * (hi - lo)) / step) * step;
    const keys = rng.sample(['gt', 'gte', 'lt', 'lte'], rng.int(1, 2));
    for (const k of keys) b[k] = v();
    return b;
}

function dtBound(rng) {
    const d = String(rng.int(1, 28)).padStart(2, '0');
    const h = String(rng.int(0, 23)).padStart(2, '0');
    return rng.pick([`2024-03-${d}T${h}:00:00Z`, `2024-03-${d}`, `2024-03-${d}T${h}:30:00+01:00`, `2024-03-${d} ${h}:15:00`]);
}

const strKeys = ['color', 'text', 'tags', 'items[].k', 'meta.b.c', 'items[0].k'];
const intKeys = ['n', 'meta.a', 'items[].v', 'meta.list', 'meta.list[]', 'color'];
const numKeys = ['n', 'price', 'meta.a', 'items[].v', 'meta.list[]'];
const anyKeys = ['color', 'n', 'flag', 'tags', 'tags[]', 'items', 'items[].k', 'items[].v', 'meta', 'meta.a', 'meta.b',
    'meta.b.c', 'meta.list', 'ts', 'nope', 'items[].tags'];

export const CONDITION_KINDS = [
    'match_value', 'match_any', 'match_except', 'match_text', 'range', 'datetime_range', 'values_count',
    'is_empty', 'is_null', 'has_id', 'nested',
];

export function randomCondition(rng, kind, ids, depth = 0) {
    switch (kind) {
        case 'match_value':
            return oneOf(rng, [
                [4, () => ({ key: rng.pick(strKeys), match: { value: rng.pick([...COLORS, ...TAGS, ...KS, 'x', 'y', 'alpha']) } })],
                [4, () => ({ key: rng.pick(intKeys), match: { value: rng.int(-2, 5) } })],
                [2, () => ({ key: rng.pick(['flag', 'n']), match: { value: rng.chance(0.5) } })],
            ]);
        case 'match_any':
            return oneOf(rng, [
                [4, () => ({ key: rng.pick(strKeys), match: { any: rng.sample([...COLORS, ...TAGS, ...KS], rng.int(1, 4)) } })],
                [4, () => ({ key: rng.pick(intKeys), match: { any: rng.sample([-2, -1, 0, 1, 2, 3, 4, 5], rng.int(1, 3)) } })],
                [1, () => ({ key: rng.pick(strKeys), match: { any: [] } })],
            ]);
        case 'match_except':
            return oneOf(rng, [
                [4, () => ({ key: rng.pick(strKeys), match: { except: rng.sample([...COLORS, ...TAGS, ...KS], rng.int(1, 4)) } })],
                [4, () => ({ key: rng.pick(intKeys), match: { except: rng.sample([-2, -1, 0, 1, 2, 3, 4, 5], rng.int(1, 3)) } })],
                [1, () => ({ key: rng.pick(anyKeys), match: { except: [] } })],
            ]);
        case 'match_text': {
            const key = rng.pick(['text', 'text', 'color', 'tags', 'items[].k']);
            const text = rng.pick({
                text: ['app', 'fox', 'ick b', 'a', 'gamma', 'pie ', 'ta', 'zzz'],
                color: ['re', 'Re', 'e', 'ow', 'lu'],
                tags: ['a', 'e', 'b'],
                'items[].k': ['a', 'b'],
            }[key]);
            return { key, match: { text } };
        }
        case 'range':
            return { key: rng.pick(numKeys), range: bounds(rng, -3, rng.pick([6, 20]), rng.pick([1, 0.5, 0.25])) };
        case 'datetime_range': {
            const b = {};
            for (const k of rng.sample(['gt', 'gte', 'lt', 'lte'], rng.int(1, 2))) b[k] = dtBound(rng);
            return { key: 'ts', range: b };
        }
        case 'values_count':
            return { key: rng.pick(['tags', 'items', 'color', 'n', 'meta.list', 'items[].tags', 'nope']), values_count: bounds(rng, 0, 4) };
        case 'is_empty':
            return { is_empty: { key: rng.pick(anyKeys) } };
        case 'is_null':
            return { is_null: { key: rng.pick(anyKeys) } };
        case 'has_id':
            return { has_id: rng.sample(ids, rng.int(1, 25)) };
        case 'nested': {
            const inner = [];
            for (let i = rng.int(1, 2); i > 0; i--) {
                inner.push(oneOf(rng, [
                    [3, () => ({ key: 'k', match: { value: rng.pick(KS) } })],
                    [3, () => ({ key: 'v', range: bounds(rng, 0, 5) })],
                    [1, () => ({ is_null: { key: 'v' } })],
                    [1, () => ({ is_empty: { key: 'tags' } })],
                    [1, () => ({ key: 'tags', match: { any: rng.sample(TAGS, 2) } })],
                ]));
            }
            const filter = rng.chance(0.7) ? { must: inner } : { should: inner, must_not: depth === 0 && rng.chance(0.3) ? [{ key: 'k', match: { value: 'c' } }] : undefined };
            if (filter.must_not === undefined) delete filter.must_not;
            return { nested: { key: rng.pick(['items', 'items[]']), filter } };
        }
        default:
            throw new Error(kind);
    }
}

// A random filter: clauses of random conditions, sub-filters to depth 2.
export function randomFilter(rng, ids, depth = 0) {
    const cond = () => (depth < 2 && rng.chance(0.15)
        ? randomFilter(rng, ids, depth + 1)
        : randomCondition(rng, rng.pick(CONDITION_KINDS), ids, depth));
    const list = (lo, hi) => Array.from({ length: rng.int(lo, hi) }, cond);
    const f = {};
    if (rng.chance(0.6)) f.must = list(1, 3);
    if (rng.chance(0.35)) f.should = rng.chance(0.05) ? [] : list(1, 3);
    if (rng.chance(0.3)) f.must_not = list(1, 2);
    if (rng.chance(0.2)) {
        const conditions = list(2, 4);
        f.min_should = { conditions, min_count: rng.int(1, conditions.length) };
    }
    if (Object.keys(f).length === 0) f.must = list(1, 2);
    return f;
}
