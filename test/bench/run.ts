/**
 * `npm run bench`: every figure of the benchmarks with its baseline, measured in one process
 * tree on this machine, printed as one table at the end. Each part starts what it measures
 * (servers, registries, a Ceph RGW) and removes it again: data dirs, schemas, buckets, processes.
 * The parts: upload-download.ts, catalog-read.ts, downloads.ts, s3.ts (each also runs alone).
 */
import { cpus, totalmem } from 'node:os';
import { catalogBench } from './catalog-read.ts';
import { downloadBench } from './downloads.ts';
import { s3Bench } from './s3.ts';
import { printTable, type Row } from './table.ts';
import { uploadBench } from './upload-download.ts';

const started = performance.now();
const rows: Row[] = [];
for (const part of [uploadBench, catalogBench, downloadBench, s3Bench]) rows.push(...(await part()));
console.log(`\nimgsrv bench on ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}; ${((performance.now() - started) / 60000).toFixed(1)} min`);
printTable(rows);
