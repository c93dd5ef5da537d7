// The peer queue of engine-bench: graphile-worker on the same PostgreSQL
// server, JOBS no-op jobs added before the clock starts, then worked by one
// process with 16 jobs at once (as our engine has 16 sends in flight) until
// the queue is empty. BATCHED=1 uses its batching: a local queue of 500
// jobs fetched at once, and completions written together. Prints
// {"jobs": N, "seconds": S}.
import { Logger, makeWorkerUtils, run } from "graphile-worker";

const connectionString = process.env.DATABASE_URL;
const jobs = Number(process.env.JOBS);
const batched = process.env.BATCHED === "1";
const quiet = new Logger(() => () => {});

const utils = await makeWorkerUtils({ connectionString, logger: quiet });
await utils.migrate();
for (let start = 0; start < jobs; start += 1000) {
  const specs = [];
  for (let n = start; n < Math.min(jobs, start + 1000); n++) specs.push({ identifier: "noop", payload: { n } });
  await utils.addJobs(specs);
}
const waiting = async () =>
  utils.withPgClient(async (client) => Number((await client.query("SELECT count(*) AS n FROM graphile_worker.jobs")).rows[0].n));

const started = process.hrtime.bigint();
const runner = await run({
  connectionString,
  concurrency: 16,
  noHandleSignals: true,
  pollInterval: 1000,
  logger: quiet,
  preset: batched ? { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } } : {},
  taskList: { noop: async () => {} },
});
// Done when every job's completion is written: the queue is empty.
while ((await waiting()) > 0) await new Promise((resolve) => setTimeout(resolve, 10));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await runner.stop();
await utils.release();
console.log(JSON.stringify({ jobs, seconds }));
