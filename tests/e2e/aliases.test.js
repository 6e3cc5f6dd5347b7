// Collection aliases: create, rename, delete, list, and reads and writes
// through an alias.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeClient, uniqueName, expectStatus } from './lib/harness.js';

const client = makeClient();

const sortAliases = (list) => list.slice().sort((a, b) => a.alias_name.localeCompare(b.alias_name));

async function collectionWith(points) {
    const name = uniqueName('alias_coll');
    await client.createCollection(name, { vectors: { size: 2, distance: 'Euclid' } });
    await client.upsert(name, { wait: true, points });
    return name;
}

test('updateCollectionAliases create/rename/delete, with getAliases and getCollectionAliases', async () => {
    const a = await collectionWith([{ id: 1, vector: [0, 0] }]);
    const b = await collectionWith([{ id: 2, vector: [1, 1] }]);
    const [x, y, z] = [uniqueName('alias_x'), uniqueName('alias_y'), uniqueName('alias_z')];

    assert.equal(await client.updateCollectionAliases({
        actions: [
            { create_alias: { collection_name: a, alias_name: x } },
            { create_alias: { collection_name: b, alias_name: y } },
        ],
    }), true);
    const mine = (list) => sortAliases(list.aliases.filter((al) => [x, y, z].includes(al.alias_name)));
    assert.deepEqual(mine(await client.getAliases()),
        sortAliases([{ alias_name: x, collection_name: a }, { alias_name: y, collection_name: b }]));
    assert.deepEqual((await client.getCollectionAliases(a)).aliases, [{ alias_name: x, collection_name: a }]);
    assert.deepEqual((await client.getCollectionAliases(b)).aliases, [{ alias_name: y, collection_name: b }]);

    // rename x -> z
    await client.updateCollectionAliases({ actions: [{ rename_alias: { old_alias_name: x, new_alias_name: z } }] });
    assert.deepEqual(mine(await client.getAliases()),
        sortAliases([{ alias_name: z, collection_name: a }, { alias_name: y, collection_name: b }]));
    await expectStatus(client.getCollection(x), 404, 'the old name of a renamed alias');
    assert.equal((await client.getCollection(z)).points_count, 1);

    // switch y from b to a atomically, then delete both
    await client.updateCollectionAliases({
        actions: [
            { delete_alias: { alias_name: y } },
            { create_alias: { collection_name: a, alias_name: y } },
        ],
    });
    assert.deepEqual(sortAliases((await client.getCollectionAliases(a)).aliases),
        sortAliases([{ alias_name: y, collection_name: a }, { alias_name: z, collection_name: a }]));
    assert.deepEqual((await client.getCollectionAliases(b)).aliases, []);
    await client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: y } }, { delete_alias: { alias_name: z } }] });
    assert.deepEqual(mine(await client.getAliases()), []);
    assert.deepEqual((await client.getCollectionAliases(a)).aliases, []);

    await client.deleteCollection(a);
    await client.deleteCollection(b);
});

test('queries, search, scroll, count, retrieve and upserts work through an alias', async () => {
    const points = [];
    for (let i = 1; i <= 20; i++) points.push({ id: i, vector: [i, 0], payload: { i } });
    const name = await collectionWith(points);
    const alias = uniqueName('alias_prod');
    await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: name, alias_name: alias } }] });

    const direct = await client.query(name, { query: [3.2, 0], limit: 5, with_payload: true });
    const via = await client.query(alias, { query: [3.2, 0], limit: 5, with_payload: true });
    assert.deepEqual(via.points.map((p) => [p.id, p.score, p.payload]), direct.points.map((p) => [p.id, p.score, p.payload]));
    assert.deepEqual(via.points.map((p) => p.id), [3, 4, 2, 5, 1]);
    const byId = await client.query(alias, { query: 10, limit: 2 });
    assert.deepEqual(byId.points.map((p) => p.id), [9, 11]);
    assert.deepEqual((await client.search(alias, { vector: [20, 0], limit: 1 })).map((p) => p.id), [20]);
    assert.equal((await client.count(alias)).count, 20);
    assert.equal((await client.scroll(alias, { limit: 100 })).points.length, 20);
    assert.deepEqual((await client.retrieve(alias, { ids: [7] }))[0].payload, { i: 7 });
    assert.equal((await client.getCollection(alias)).points_count, 20);

    await client.upsert(alias, { wait: true, points: [{ id: 21, vector: [21, 0], payload: { via: 'alias' } }] });
    await client.setPayload(alias, { wait: true, points: [1], payload: { touched: true } });
    await client.delete(alias, { wait: true, points: [2] });
    assert.equal((await client.count(name)).count, 20);
    assert.deepEqual((await client.retrieve(name, { ids: [21] }))[0].payload, { via: 'alias' });
    assert.deepEqual((await client.retrieve(name, { ids: [1] }))[0].payload, { i: 1, touched: true });

    // deleting the collection deletes its aliases
    await client.deleteCollection(name);
    await expectStatus(client.query(alias, { query: [0, 0] }), 404, 'query through the alias of a deleted collection');
    assert.ok(!(await client.getAliases()).aliases.some((a) => a.alias_name === alias));
});

test('alias errors: unknown collection, existing name, missing alias', async () => {
    const name = await collectionWith([{ id: 1, vector: [0, 0] }]);
    const other = await collectionWith([{ id: 1, vector: [0, 0] }]);
    const alias = uniqueName('alias_err');
    await expectStatus(client.updateCollectionAliases({
        actions: [{ create_alias: { collection_name: uniqueName('missing'), alias_name: alias } }],
    }), 404, 'alias to a missing collection');
    await expectStatus(client.updateCollectionAliases({
        actions: [{ delete_alias: { alias_name: uniqueName('missing_alias') } }],
    }), 404, 'delete of a missing alias');
    await expectStatus(client.updateCollectionAliases({
        actions: [{ create_alias: { collection_name: name, alias_name: other } }],
    }), 409, 'alias named like an existing collection');
    await client.deleteCollection(name);
    await client.deleteCollection(other);
});

// Qdrant's collection_exists is Ok(get_collection(name)), which resolves
// aliases (src/common/collections.rs, toc::resolve_name).
test('collectionExists is true for an alias, as getCollection through it is', async () => {
    const name = await collectionWith([{ id: 1, vector: [0, 0] }]);
    const alias = uniqueName('alias_exists');
    await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: name, alias_name: alias } }] });
    assert.equal((await client.getCollection(alias)).points_count, 1);
    assert.deepEqual(await client.collectionExists(alias), { exists: true });
    await client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: alias } }] });
    assert.deepEqual(await client.collectionExists(alias), { exists: false });
    await client.deleteCollection(name);
});

test('an alias switch while a query loop runs: no query fails, answers move to the new collection', async () => {
    // old: every point's payload says "old"; new: "new" (the migration story)
    const mk = async (tag) => {
        const name = uniqueName(`switch_${tag}`);
        await client.createCollection(name, { vectors: { size: 2, distance: 'Dot' } });
        await client.upsert(name, {
            wait: true,
            points: Array.from({ length: 50 }, (_, i) => ({ id: i, vector: [1, i / 50], payload: { tag } })),
        });
        return name;
    };
    const oldC = await mk('old');
    const newC = await mk('new');
    const alias = uniqueName('switch_alias');
    await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: oldC, alias_name: alias } }] });

    let stop = false;
    const seen = { old: 0, new: 0 };
    const failures = [];
    const loop = async () => {
        while (!stop) {
            try {
                const r = await client.query(alias, { query: [1, 0.5], limit: 3, with_payload: true });
                assert.equal(r.points.length, 3);
                const tags = new Set(r.points.map((p) => p.payload.tag));
                assert.equal(tags.size, 1, 'one answer never mixes collections');
                seen[[...tags][0]] += 1;
            } catch (e) {
                failures.push(e);
            }
        }
    };
    const loops = [loop(), loop(), loop()];
    await new Promise((r) => setTimeout(r, 300));
    // the switch: one atomic batch of alias actions
    await client.updateCollectionAliases({
        actions: [
            { delete_alias: { alias_name: alias } },
            { create_alias: { collection_name: newC, alias_name: alias } },
        ],
    });
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    assert.deepEqual(failures, [], `queries failed during the switch: ${failures.map(String).join('; ')}`);
    assert.ok(seen.old > 0 && seen.new > 0, `queries ran on both sides of the switch: ${JSON.stringify(seen)}`);
    const after = await client.query(alias, { query: [1, 0.5], limit: 1, with_payload: true });
    assert.equal(after.points[0].payload.tag, 'new');
});
