// Brute-force references the end-to-end tests compare the server against:
// Qdrant's scores and ranking for each distance, and Qdrant's filter
// language evaluated on one point at a time.
//
// The filter semantics are those of Qdrant 1.19 on payload fields without
// an index (lib/segment/src/payload_storage/query_checker.rs,
// condition_checker.rs, common/utils.rs, json_path/mod.rs):
//   - a key path yields zero or more values: "a.b" only descends into
//     objects, "a[]" yields every element of an array, "a[2]" one element;
//   - a field condition on a path that yields nothing is false, except
//     values_count (checked against a count of 0);
//   - otherwise it holds if any value passes; an array value passes if any
//     element passes (one level), except values_count, which counts the
//     array (null counts 0, a scalar 1);
//   - is_empty holds if every value is null or [] (or there is none);
//     is_null holds if some value is null (an array containing null is not);
//   - should holds if any condition holds (so an empty should list matches
//     nothing), min_should if at least min_count hold, must if all hold,
//     must_not if none holds;
//   - nested {key, filter}: "[]" is appended to key unless already there;
//     some object element must pass the whole inner filter (has_id is
//     false inside).
import assert from 'node:assert/strict';

export const METRICS = ['Cosine', 'Dot', 'Euclid', 'Manhattan'];

// ---- ids -------------------------------------------------------------------

export function idKey(id) {
    return typeof id === 'string' ? id.toLowerCase() : String(id);
}

// Qdrant's order of point ids: unsigned integers first, ascending, then
// UUIDs in byte order (the order of their lowercase hyphenated text).
export function compareIds(a, b) {
    const na = typeof a === 'number', nb = typeof b === 'number';
    if (na && nb) return a - b;
    if (na !== nb) return na ? -1 : 1;
    const sa = a.toLowerCase(), sb = b.toLowerCase();
    return sa < sb ? -1 : sa > sb ? 1 : 0;
}

// ---- distances ---------------------------------------------------------------

export function normalize(v) {
    let s = 0;
    for (const x of v) s += x * x;
    const n = Math.sqrt(s);
    return n === 0 ? v.slice() : v.map((x) => x / n);
}

// The score Qdrant reports for stored vector v and query q.
export function score(metric, q, v) {
    assert.equal(q.length, v.length, 'dimension mismatch in the reference');
    let s = 0;
    switch (metric) {
        case 'Cosine': {
            const a = normalize(q), b = normalize(v);
            for (let i = 0; i < a.length; i++) s += a[i] * b[i];
            return s;
        }
        case 'Dot':
            for (let i = 0; i < q.length; i++) s += q[i] * v[i];
            return s;
        case 'Euclid':
            for (let i = 0; i < q.length; i++) s += (q[i] - v[i]) ** 2;
            return Math.sqrt(s);
        case 'Manhattan':
            for (let i = 0; i < q.length; i++) s += Math.abs(q[i] - v[i]);
            return s;
        default:
            throw new Error(`unknown metric ${metric}`);
    }
}

export function higherIsBetter(metric) {
    return metric === 'Cosine' || metric === 'Dot';
}

// <0 if score a ranks before score b.
export function compareScores(metric, a, b) {
    return higherIsBetter(metric) ? b - a : a - b;
}

// Every candidate ranked: better score first, ties by smaller id.
// candidates: [{id, vector, payload}]; opts.filter (Qdrant filter JSON),
// opts.exclude (an id), opts.threshold (score_threshold).
export function rank(metric, candidates, q, opts = {}) {
    const out = [];
    for (const p of candidates) {
        if (p.vector == null) continue;
        if (opts.exclude !== undefined && idKey(p.id) === idKey(opts.exclude)) continue;
        if (opts.filter && !matchFilter(opts.filter, p)) continue;
        const s = score(metric, q, p.vector);
        if (opts.threshold !== undefined && compareScores(metric, s, opts.threshold) > 0) continue;
        out.push({ id: p.id, score: s, point: p });
    }
    out.sort((a, b) => compareScores(metric, a.score, b.score) || compareIds(a.id, b.id));
    return out;
}

// Tolerance for comparing a server score (float32 arithmetic) with the
// reference (float64).
export function tolerance(s) {
    return 1e-5 * Math.max(1, Math.abs(s));
}

// Check a server's ranked answer against the reference ranking cut to the
// expected window (`all`: the whole reference ranking the window was cut
// from, for offsets and filters).
//
// Scores must agree to float rounding.  Reference scores within rounding
// of each other form a cluster, in which any order is right, except for
// real ties, which must be broken by the smaller id: equal scores for Dot,
// Euclid and Manhattan on the tests' grid vectors (exact in float32), and
// identical vectors for Cosine (float32 normalisation can split the
// mathematically equal scores of different vectors by an ulp).  So rank i
// must hold a point of the cluster that reference rank i belongs to, and
// the members of a real tie must come in id order, and a window may leave
// out the larger ids of a tie only at its end (the smaller at its start).
export function checkRanking(metric, got, expected, what, all = expected) {
    const show = () =>
        `\n  got:      ${JSON.stringify(got.map((g) => [g.id, g.score]))}` +
        `\n  expected: ${JSON.stringify(expected.map((e) => [e.id, +e.score.toFixed(6)]))}`;
    assert.equal(got.length, expected.length, `${what}: result count${show()}`);
    const pos = new Map(all.map((e, i) => [idKey(e.id), i]));
    const cl = [];
    for (let i = 0, c = 0; i < all.length; i++) {
        if (i > 0 && Math.abs(all[i].score - all[i - 1].score) > tolerance(all[i].score)) c++;
        cl.push(c);
    }
    const start = expected.length ? pos.get(idKey(expected[0].id)) : 0;
    const end = start + expected.length;
    const seen = new Set();
    for (let i = 0; i < got.length; i++) {
        const g = got[i], k = idKey(g.id);
        assert.ok(!seen.has(k), `${what}: id ${g.id} returned twice${show()}`);
        seen.add(k);
        assert.equal(typeof g.score, 'number', `${what}: rank ${i} has no score${show()}`);
        const p = pos.get(k);
        assert.ok(p !== undefined, `${what}: rank ${i} is id ${g.id}, which is not a candidate${show()}`);
        assert.ok(Math.abs(g.score - all[p].score) <= tolerance(all[p].score),
            `${what}: id ${g.id} scores ${g.score}, expected ${all[p].score}${show()}`);
        assert.ok(cl[p] === cl[start + i],
            `${what}: rank ${i} is id ${g.id} (score ${all[p].score}), expected id ${all[start + i].id} (score ${all[start + i].score})${show()}`);
        if (i > 0) {
            const prev = got[i - 1];
            assert.ok(compareScores(metric, prev.score, g.score) <= 0, `${what}: scores out of order at rank ${i}${show()}`);
            if (prev.score === g.score)
                assert.ok(compareIds(prev.id, g.id) < 0, `${what}: equal scores at ranks ${i - 1}, ${i} not in id order${show()}`);
        }
    }
    // real ties
    const tieKey = (e) => (metric === 'Cosine' ? `${e.score} ${JSON.stringify(e.point?.vector ?? e.id)}` : `${e.score}`);
    const groups = new Map();
    all.forEach((e, i) => {
        const key = tieKey(e);
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(i);
    });
    const gotIndex = new Map(got.map((g, i) => [idKey(g.id), i]));
    for (const members of groups.values()) {
        if (members.length < 2) continue;
        const byId = members.slice().sort((x, y) => compareIds(all[x].id, all[y].id));
        const inc = byId.map((m) => gotIndex.has(idKey(all[m].id)));
        const first = inc.indexOf(true), last = inc.lastIndexOf(true);
        if (first < 0) continue;
        const ids = byId.map((m) => all[m].id);
        assert.ok(inc.slice(first, last + 1).every(Boolean),
            `${what}: a tie (score ${all[members[0]].score}, ids ${ids}) is returned with a gap${show()}`);
        const order = byId.filter((m, j) => inc[j]).map((m) => gotIndex.get(idKey(all[m].id)));
        assert.ok(order.every((x, j) => j === 0 || order[j - 1] < x),
            `${what}: tied ids ${ids} not in id order${show()}`);
        const c = cl[members[0]];
        assert.ok(first === 0 || (start > 0 && cl[start - 1] === c && cl[start] === c),
            `${what}: tied ids ${ids}: a smaller id of the tie is left out${show()}`);
        assert.ok(last === byId.length - 1 || (end < all.length && cl[end] === c && cl[end - 1] === c),
            `${what}: tied ids ${ids}: a larger id is returned while a smaller one is left out${show()}`);
    }
}

// ---- key paths -----------------------------------------------------------------

// "a.b[].c[2]" -> [{key:'a'},{key:'b'},{all:true},{key:'c'},{index:2}]
export function parsePath(path) {
    const segs = [];
    let i = 0;
    const key = () => {
        if (path[i] === '"') {
            const j = path.indexOf('"', i + 1);
            if (j < 0) throw new Error(`bad path ${path}`);
            segs.push({ key: path.slice(i + 1, j) });
            i = j + 1;
        } else {
            const m = /^[A-Za-z0-9_-]+/.exec(path.slice(i));
            if (!m) throw new Error(`bad path ${path}`);
            segs.push({ key: m[0] });
            i += m[0].length;
        }
    };
    key();
    while (i < path.length) {
        if (path[i] === '.') {
            i++;
            key();
        } else if (path.startsWith('[]', i)) {
            segs.push({ all: true });
            i += 2;
        } else if (path[i] === '[') {
            const m = /^\[(\d+)\]/.exec(path.slice(i));
            if (!m) throw new Error(`bad path ${path}`);
            segs.push({ index: Number(m[1]) });
            i += m[0].length;
        } else {
            throw new Error(`bad path ${path}`);
        }
    }
    return segs;
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// Every value found at path in an object (Qdrant's JsonPath::value_get).
export function valuesAt(obj, path) {
    const out = [];
    const walk = (segs, v) => {
        if (v === undefined) return;
        if (segs.length === 0) {
            out.push(v);
            return;
        }
        const [s, ...rest] = segs;
        if (s.key !== undefined) {
            if (isObj(v) && Object.hasOwn(v, s.key)) walk(rest, v[s.key]);
        } else if (s.index !== undefined) {
            if (Array.isArray(v) && s.index < v.length) walk(rest, v[s.index]);
        } else if (Array.isArray(v)) {
            for (const e of v) walk(rest, e);
        }
    };
    if (isObj(obj)) walk(parsePath(path), obj);
    return out;
}

// ---- datetimes -------------------------------------------------------------------

// The forms Qdrant accepts (RFC 3339; "T" or " " between date and time;
// offsets Z, +HH:MM, +HHMM; no offset is UTC; "HH:MM" without seconds;
// a bare date).  Returns epoch milliseconds, or null.
export function parseDatetime(s) {
    if (typeof s !== 'string') return null;
    const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(s);
    if (!m) return null;
    const [, y, mo, d, h = '0', mi = '0', sec, frac, off] = m;
    if (sec === undefined && off !== undefined) return null;
    let ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, sec === undefined ? 0 : +sec);
    if (frac) ms += Math.floor(Number(`0.${frac}`) * 1000 + 1e-9);
    if (off && off !== 'Z') {
        const sign = off[0] === '-' ? -1 : 1;
        const digits = off.slice(1).replace(':', '');
        ms -= sign * (+digits.slice(0, 2) * 60 + +digits.slice(2)) * 60000;
    }
    return ms;
}

// ---- filters -------------------------------------------------------------------

const isInt = (v) => typeof v === 'number' && Number.isInteger(v);

function inBounds(b, x, cmp) {
    return (b.lt == null || cmp(x, b.lt) < 0) && (b.gt == null || cmp(x, b.gt) > 0) &&
        (b.lte == null || cmp(x, b.lte) <= 0) && (b.gte == null || cmp(x, b.gte) >= 0);
}

function isDatetimeRange(r) {
    return ['lt', 'gt', 'lte', 'gte'].some((k) => typeof r[k] === 'string');
}

// Qdrant's check_match: one non-array value against match / range.
function checkMatch(cond, v) {
    const m = cond.match;
    if (m) {
        if ('value' in m) {
            const want = m.value;
            if (typeof want === 'string') return typeof v === 'string' && v === want;
            if (typeof want === 'boolean') return typeof v === 'boolean' && v === want;
            return isInt(v) && v === want;
        }
        if ('text' in m) return typeof v === 'string' && v.includes(m.text);
        if ('any' in m) {
            const strs = m.any.length === 0 || typeof m.any[0] === 'string';
            if (strs) return typeof v === 'string' && m.any.includes(v);
            return isInt(v) && m.any.includes(v);
        }
        if ('except' in m) {
            const strs = m.except.length === 0 || typeof m.except[0] === 'string';
            if (v === null) return false;
            if (strs && typeof v === 'string') return !m.except.includes(v);
            if (!strs && typeof v === 'number') return !isInt(v) || !m.except.includes(v);
            return true;
        }
        throw new Error(`reference: unsupported match ${JSON.stringify(m)}`);
    }
    if (cond.range) {
        if (isDatetimeRange(cond.range)) {
            const t = parseDatetime(v);
            if (t === null) return false;
            const b = {};
            for (const k of ['lt', 'gt', 'lte', 'gte'])
                if (cond.range[k] != null) b[k] = parseDatetime(cond.range[k]);
            return inBounds(b, t, (a, c) => a - c);
        }
        return typeof v === 'number' && inBounds(cond.range, v, (a, c) => a - c);
    }
    throw new Error(`reference: unsupported field condition ${JSON.stringify(cond)}`);
}

function countOf(v) {
    if (v === null) return 0;
    if (Array.isArray(v)) return v.length;
    return 1;
}

function fieldCondition(cond, payload) {
    const values = valuesAt(payload, cond.key);
    if (cond.values_count) {
        if (values.length === 0) return inBounds(cond.values_count, 0, (a, b) => a - b);
        return values.some((v) => inBounds(cond.values_count, countOf(v), (a, b) => a - b));
    }
    if (values.length === 0) return false;
    return values.some((v) => (Array.isArray(v) ? v.some((e) => checkMatch(cond, e)) : checkMatch(cond, v)));
}

function condition(c, point, inNested) {
    if ('key' in c) return fieldCondition(c, point.payload);
    if ('is_empty' in c)
        return valuesAt(point.payload, c.is_empty.key).every((v) => v === null || (Array.isArray(v) && v.length === 0));
    if ('is_null' in c) return valuesAt(point.payload, c.is_null.key).some((v) => v === null);
    if ('has_id' in c) return !inNested && c.has_id.some((id) => idKey(id) === idKey(point.id));
    if ('nested' in c) {
        const key = c.nested.key.endsWith('[]') ? c.nested.key : `${c.nested.key}[]`;
        return valuesAt(point.payload, key).some((v) => isObj(v) && filterOn(c.nested.filter, { payload: v }, true));
    }
    if ('must' in c || 'should' in c || 'must_not' in c || 'min_should' in c) return filterOn(c, point, inNested);
    throw new Error(`reference: unsupported condition ${JSON.stringify(c)}`);
}

const asList = (x) => (x == null ? null : Array.isArray(x) ? x : [x]);

function filterOn(f, point, inNested) {
    const must = asList(f.must), should = asList(f.should), mustNot = asList(f.must_not);
    if (should && !should.some((c) => condition(c, point, inNested))) return false;
    if (f.min_should) {
        const hits = f.min_should.conditions.filter((c) => condition(c, point, inNested)).length;
        if (hits < f.min_should.min_count) return false;
    }
    if (must && !must.every((c) => condition(c, point, inNested))) return false;
    if (mustNot && mustNot.some((c) => condition(c, point, inNested))) return false;
    return true;
}

// Does point {id, payload} pass the Qdrant filter?
export function matchFilter(filter, point) {
    if (filter == null) return true;
    return filterOn(filter, { id: point.id, payload: point.payload ?? {} }, false);
}

// ---- payload selectors --------------------------------------------------------------

function deepClone(v) {
    return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

// Expected payload for a with_payload selector (object paths only).
export function selectPayload(payload, sel) {
    payload = payload ?? {};
    if (sel === true) return deepClone(payload);
    if (sel === false || sel == null) return null;
    const include = Array.isArray(sel) ? sel : sel.include;
    if (include) {
        const out = {};
        for (const path of include) {
            const segs = parsePath(path);
            let src = payload, dst = out;
            for (let i = 0; i < segs.length; i++) {
                const k = segs[i].key;
                if (!isObj(src) || !Object.hasOwn(src, k)) break;
                if (i === segs.length - 1) {
                    dst[k] = deepClone(src[k]);
                } else {
                    if (!isObj(src[k])) break;
                    if (!isObj(dst[k])) dst[k] = {};
                    dst = dst[k];
                }
                src = src[k];
            }
        }
        return out;
    }
    const out = deepClone(payload);
    for (const path of sel.exclude) {
        const segs = parsePath(path);
        let o = out;
        for (let i = 0; i < segs.length - 1 && isObj(o); i++) o = o[segs[i].key];
        if (isObj(o)) delete o[segs[segs.length - 1].key];
    }
    return out;
}
