// Shared helpers: the client against the server that scripts/e2e.sh
// started, unique collection names, a seeded random generator, error
// checks, and a private server for tests that must kill one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { QdrantClient } from '@qdrant/js-client-rest';

export const SERVER_URL = process.env.VECLOG_E2E_URL;
export const SEED = Number(process.env.VECLOG_E2E_SEED ?? 20240917);

if (!SERVER_URL) {
    throw new Error('VECLOG_E2E_URL is not set: run the suite with scripts/e2e.sh, ' +
        'or start `bin/veclog serve` and set VECLOG_E2E_URL=http://127.0.0.1:PORT');
}

export function makeClient(url = SERVER_URL) {
    // checkCompatibility: false: no version probe on construction.
    return new QdrantClient({ url, checkCompatibility: false, timeout: 60_000 });
}

let counter = 0;
// A collection name no other test file (they run in parallel) will use.
export function uniqueName(prefix) {
    counter += 1;
    return `e2e_${prefix}_${process.pid}_${counter}`;
}

// mulberry32: small, fast, seeded; the same seed gives the same data.
export function makeRng(seed = SEED) {
    let a = seed >>> 0;
    const next = () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const r = {
        next,
        int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // inclusive
        pick: (arr) => arr[Math.floor(next() * arr.length)],
        chance: (p) => next() < p,
        sample: (arr, k) => {
            const copy = arr.slice();
            for (let i = copy.length - 1; i > 0; i--) {
                const j = Math.floor(next() * (i + 1));
                [copy[i], copy[j]] = [copy[j], copy[i]];
            }
            return copy.slice(0, k);
        },
        uuid: () => {
            const h = () => Math.floor(next() * 16).toString(16);
            const s = Array.from({ length: 32 }, h);
            s[12] = '4';
            s[16] = '89ab'[Math.floor(next() * 4)];
            const t = s.join('');
            return `${t.slice(0, 8)}-${t.slice(8, 12)}-${t.slice(12, 16)}-${t.slice(16, 20)}-${t.slice(20)}`;
        },
    };
    return r;
}

// Await a client call that must fail with HTTP status `status`; returns the
// error.  The client throws the generated API's ApiError ({status, data}).
export async function expectStatus(promise, status, what) {
    let err;
    try {
        await promise;
    } catch (e) {
        err = e;
    }
    assert.ok(err, `${what}: expected HTTP ${status}, but the call succeeded`);
    assert.equal(err.status, status,
        `${what}: expected HTTP ${status}, got ${err.status ?? err}: ${JSON.stringify(err.data)}`);
    assert.equal(typeof err.data?.status?.error, 'string',
        `${what}: error body must be {"status": {"error": ...}}, got ${JSON.stringify(err.data)}`);
    return err;
}

// Upsert points in chunks, wait=true.
export async function upsertAll(client, name, points, chunk = 500) {
    for (let i = 0; i < points.length; i += chunk) {
        const res = await client.upsert(name, { wait: true, points: points.slice(i, i + chunk) });
        assert.equal(res.status, 'completed');
    }
}

// Every point of a collection, following next_page_offset.
export async function scrollAll(client, name, opts = {}) {
    const out = [];
    let offset;
    for (let pages = 0; ; pages++) {
        assert.ok(pages < 10_000, 'scroll does not end');
        const res = await client.scroll(name, { limit: 1000, with_payload: true, with_vector: false, ...opts, offset });
        out.push(...res.points);
        if (res.next_page_offset == null) return out;
        offset = res.next_page_offset;
    }
}

// ---- a private server, for tests that kill it ---------------------------------

export async function freePort() {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address();
    srv.close();
    await once(srv, 'close');
    return port;
}

async function waitReady(url, proc, ms) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (proc.exitCode !== null || proc.signalCode !== null)
            throw new Error(`server exited (${proc.exitCode ?? proc.signalCode}) before it was ready`);
        try {
            const r = await fetch(`${url}/readyz`);
            await r.arrayBuffer();
            if (r.status === 200) return;
        } catch {
            // not listening yet
        }
        await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`server at ${url} not ready after ${ms} ms`);
}

// Start `VECLOG_BIN serve` on storage dir `storage` (loopback, a free port).
// Returns {url, proc, logPath, kill9(), stop()}.
export async function startServer(storage, logName = 'server.log') {
    const bin = process.env.VECLOG_BIN;
    assert.ok(bin, 'VECLOG_BIN is not set (scripts/e2e.sh sets it)');
    fs.mkdirSync(storage, { recursive: true });
    const port = await freePort();
    const logPath = path.join(path.dirname(storage), logName);
    const log = fs.openSync(logPath, 'a');
    const proc = spawn(bin, ['serve'], {
        env: {
            ...process.env,
            VECLOG__SERVICE__HOST: '127.0.0.1',
            VECLOG__SERVICE__HTTP_PORT: String(port),
            VECLOG__STORAGE__STORAGE_PATH: storage,
            VECLOG__STORAGE__SNAPSHOTS_PATH: path.join(path.dirname(storage), 'snapshots'),
        },
        stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    const url = `http://127.0.0.1:${port}`;
    try {
        await waitReady(url, proc, 20_000);
    } catch (e) {
        proc.kill('SIGKILL');
        throw new Error(`${e.message}\n--- ${logPath}\n${fs.readFileSync(logPath, 'utf8').slice(-4000)}`);
    }
    const exited = once(proc, 'exit');
    return {
        url,
        proc,
        logPath,
        async kill9() {
            proc.kill('SIGKILL');
            const [code, signal] = await exited;
            return { code, signal };
        },
        async stop(ms = 30_000) {
            proc.kill('SIGTERM');
            const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
            const [code, signal] = await exited;
            clearTimeout(timer);
            return { code, signal };
        },
    };
}
