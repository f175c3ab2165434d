import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freshReads } from '../../src/lib/fresh-read.ts';

/** A query whose answers the test releases one at a time; each answer is the number of the query. */
function controlledQuery() {
  const pending: (() => void)[] = [];
  let started = 0;
  const query = () => {
    const n = ++started;
    return new Promise<number>((resolve) => pending.push(() => resolve(n)));
  };
  /** Answers the oldest query still running; fails if none was started. */
  const settle = async () => {
    for (let turn = 0; pending.length === 0; turn++) {
      if (turn > 100) throw new Error(`no query is running (${started} started in all)`);
      await new Promise((r) => setImmediate(r));
    }
    pending.shift()!();
  };
  return { query, settle, started: () => started };
}

describe('freshReads', () => {
  it('answers callers of one turn with one query', async () => {
    const q = controlledQuery();
    const read = freshReads(q.query);
    const answers = Promise.all([read(), read(), read()]);
    await q.settle();
    assert.deepEqual(await answers, [1, 1, 1]);
    assert.equal(q.started(), 1);
  });

  it('never answers a caller with a query that started before it asked', async () => {
    const q = controlledQuery();
    const read = freshReads(q.query);
    const first = read();
    await new Promise((r) => setImmediate(r));
    assert.equal(q.started(), 1, 'the first query runs');
    // These two ask while query 1 runs: they must wait for query 2, which starts after query 1.
    const later = Promise.all([read(), read()]);
    await q.settle();
    assert.equal(await first, 1);
    await q.settle();
    assert.deepEqual(await later, [2, 2]);
    assert.equal(q.started(), 2);
  });

  it('passes a failure to the callers of that query only', async () => {
    let calls = 0;
    const read = freshReads(async () => {
      if (++calls === 1) throw new Error('down');
      return calls;
    });
    await assert.rejects(read(), /down/);
    assert.equal(await read(), 2);
  });
});
