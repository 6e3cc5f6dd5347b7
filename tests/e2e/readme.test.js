// The README's JavaScript example, run exactly as written against the
// test server (only the URL is changed): it must print its results and
// exit 0.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SERVER_URL } from './lib/harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));

test('the README JavaScript example works as written', async () => {
    const readme = fs.readFileSync(path.join(here, '..', '..', 'README.md'), 'utf8');
    const m = readme.match(/```js\n([\s\S]*?)```/);
    assert.ok(m, 'README has a ```js block');
    // the example must live next to node_modules so its import resolves
    const file = path.join(here, `readme-example-${process.pid}.mjs`);
    fs.writeFileSync(file, m[1].replaceAll('http://localhost:6333', SERVER_URL));
    try {
        const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 30_000 });
        assert.match(stdout, /"title": "Dune"/, stdout);
        assert.match(stdout, /books: 3 points/, stdout);
    } finally {
        fs.unlinkSync(file);
    }
});
