// An in-memory model of one collection that applies Qdrant's point
// operations (in their JSON form, as batchUpdate takes them), so a test can
// compare the server's whole state with what Qdrant would hold.
import assert from 'node:assert/strict';
import { compareIds, idKey, matchFilter, normalize, parsePath } from './reference.js';
import { scrollAll } from './harness.js';

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

export class Model {
    // named: true for a collection of named vectors (vector is an object).
    constructor({ named = false } = {}) {
        this.named = named;
        this.points = new Map(); // idKey -> {id, vector, payload}
    }

    select({ points, filter }) {
        if (points) return points.map(idKey).filter((k) => this.points.has(k)).map((k) => this.points.get(k));
        return [...this.points.values()].filter((p) => matchFilter(filter, p));
    }

    apply(op) {
        const [kind, body] = Object.entries(op)[0];
        switch (kind) {
            case 'upsert':
                if (body.batch) {
                    const { ids, vectors, payloads } = body.batch;
                    ids.forEach((id, i) => {
                        const vector = Array.isArray(vectors)
                            ? vectors[i]
                            : Object.fromEntries(Object.entries(vectors).map(([n, vs]) => [n, vs[i]]));
                        this.points.set(idKey(id), { id, vector: clone(vector), payload: clone(payloads?.[i] ?? {}) });
                    });
                } else {
                    for (const p of body.points)
                        this.points.set(idKey(p.id), { id: p.id, vector: clone(p.vector), payload: clone(p.payload ?? {}) });
                }
                break;
            case 'delete':
                for (const p of this.select(body)) this.points.delete(idKey(p.id));
                break;
            case 'set_payload':
                for (const p of this.select(body)) {
                    let dst = p.payload;
                    if (body.key) {
                        for (const seg of parsePath(body.key)) {
                            if (!isObj(dst[seg.key])) dst[seg.key] = {};
                            dst = dst[seg.key];
                        }
                    }
                    for (const [k, v] of Object.entries(body.payload)) {
                        // Qdrant's merge: a null value removes the key
                        if (v === null) delete dst[k];
                        else dst[k] = clone(v);
                    }
                }
                break;
            case 'overwrite_payload':
                for (const p of this.select(body)) p.payload = clone(body.payload);
                break;
            case 'delete_payload':
                for (const p of this.select(body)) {
                    for (const key of body.keys) {
                        const segs = parsePath(key);
                        let o = p.payload;
                        for (let i = 0; i < segs.length - 1 && isObj(o); i++) o = o[segs[i].key];
                        if (isObj(o)) delete o[segs[segs.length - 1].key];
                    }
                }
                break;
            case 'clear_payload':
                for (const p of this.select(body)) p.payload = {};
                break;
            case 'update_vectors':
                for (const u of body.points) {
                    const p = this.points.get(idKey(u.id));
                    assert.ok(p, `model: update_vectors of missing point ${u.id}`);
                    if (this.named) Object.assign(p.vector, clone(u.vector));
                    else p.vector = clone(u.vector);
                }
                break;
            case 'delete_vectors':
                for (const p of this.select(body)) for (const n of body.vector) delete p.vector[n];
                break;
            default:
                throw new Error(`model: unknown operation ${kind}`);
        }
    }

    sorted() {
        return [...this.points.values()].sort((a, b) => compareIds(a.id, b.id));
    }
}

// Vectors equal to float32 precision (cosine: after normalisation).
export function assertVectorClose(got, want, cosine, what) {
    const w = cosine ? normalize(want) : want;
    assert.ok(Array.isArray(got), `${what}: vector missing, got ${JSON.stringify(got)}`);
    assert.equal(got.length, w.length, `${what}: vector length`);
    for (let i = 0; i < w.length; i++)
        assert.ok(Math.abs(got[i] - w[i]) <= 1e-6 * Math.max(1, Math.abs(w[i])),
            `${what}: vector ${JSON.stringify(got)}, expected ${JSON.stringify(w)}`);
}

// The server's whole collection (scroll with payload and vectors) must be
// the model's.  cosine: names (or true) of vectors stored normalised.
export async function assertState(client, name, model, { cosine = [] } = {}) {
    const got = await scrollAll(client, name, { with_payload: true, with_vector: true });
    const want = model.sorted();
    assert.deepEqual(got.map((p) => p.id), want.map((p) => p.id), `${name}: point ids`);
    for (let i = 0; i < want.length; i++) {
        const g = got[i], w = want[i];
        assert.deepEqual(g.payload ?? {}, w.payload, `${name}: payload of point ${w.id}`);
        if (model.named) {
            assert.deepEqual(Object.keys(g.vector ?? {}).sort(), Object.keys(w.vector).sort(),
                `${name}: vector names of point ${w.id}`);
            for (const [n, v] of Object.entries(w.vector))
                assertVectorClose(g.vector[n], v, cosine.includes(n), `${name}: vector ${n} of point ${w.id}`);
        } else {
            assertVectorClose(g.vector, w.vector, cosine === true, `${name}: vector of point ${w.id}`);
        }
    }
}
