import { parentPort } from 'node:worker_threads';
import { conditionEnvironment } from './cel.ts';
import type { ConditionJob, ConditionReply } from './cel-evaluator.ts';

/**
 * Worker thread that evaluates conditions, so that the evaluator can stop one that runs past
 * its budget by terminating the thread. Compiled conditions are kept in a small LRU.
 */
type Compiled = ReturnType<ReturnType<typeof conditionEnvironment>['parse']>;
const compiled = new Map<string, Compiled>();
const CACHE_SIZE = 256;

function compile(condition: string, forwardedClaims: readonly string[]): Compiled {
  const key = JSON.stringify([forwardedClaims, condition]);
  let fn = compiled.get(key);
  if (fn) compiled.delete(key);
  else fn = conditionEnvironment(forwardedClaims).parse(condition);
  compiled.set(key, fn);
  if (compiled.size > CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
  return fn;
}

const port = parentPort!;
port.on('message', (job: ConditionJob) => {
  let reply: ConditionReply;
  try {
    const value: unknown = compile(job.condition, job.forwardedClaims)({ claims: job.claims, identity: job.identity });
    reply = value === true ? { outcome: 'true' } : value === false ? { outcome: 'false' } : { outcome: 'error', message: 'the condition did not produce a bool' };
  } catch (e) {
    reply = { outcome: 'error', message: (e as Error).message.split('\n')[0]! };
  }
  port.postMessage(reply);
});
port.postMessage('ready');
