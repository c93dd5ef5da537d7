// The peer queue of engine-bench: graphile-worker on the same PostgreSQL
// server, JOBS jobs added before the clock starts, then worked by one
// process with 16 jobs at once (as our engine has 16 sends in flight) until
// the queue is empty. BATCHED=1 uses its batching: a local queue of 500
// jobs fetched at once, and completions written together.
//
// TASK=noop (the default): each job does nothing. TASK=outcome: the jobs
// carry the communications of our campaign CAMPAIGN in the same database,
// BATCH of them a job (default 1), and each job writes what ends their
// sessions in our queue, in one prepared statement: the sends' records,
// the communications COMPLETED, their contacts' session time and
// revision. CLAIM=1: first, committed on its own as our claim is before
// a send, the communications marked IN_PROGRESS with a lease. Prints
// {"jobs": N, "seconds": S}, N counting communications for TASK=outcome.
import { Logger, makeWorkerUtils, run } from "graphile-worker";

const connectionString = process.env.DATABASE_URL;
const batched = process.env.BATCHED === "1";
const task = process.env.TASK ?? "noop";
const quiet = new Logger(() => () => {});

const utils = await makeWorkerUtils({ connectionString, logger: quiet });
await utils.migrate();

let payloads;
let jobs;
if (task === "outcome") {
  const batch = Number(process.env.BATCH ?? "1");
  const rows = await utils.withPgClient(
    async (client) =>
      (
        await client.query(
          "SELECT id, contact_id, tenant_id FROM communications WHERE campaign_id = $1 AND status = 'PLANNED'",
          [process.env.CAMPAIGN],
        )
      ).rows,
  );
  payloads = [];
  for (let start = 0; start < rows.length; start += batch) {
    const some = rows.slice(start, start + batch);
    payloads.push({
      communications: some.map((row) => row.id),
      contacts: some.map((row) => row.contact_id),
      tenants: some.map((row) => row.tenant_id),
    });
  }
  jobs = rows.length;
} else if (task === "noop") {
  jobs = Number(process.env.JOBS);
  payloads = Array.from({ length: jobs }, (_, n) => ({ n }));
} else {
  throw new Error(`TASK=${task}: expected noop or outcome`);
}
for (let start = 0; start < payloads.length; start += 1000) {
  await utils.addJobs(payloads.slice(start, start + 1000).map((payload) => ({ identifier: task, payload })));
}
const waiting = async () =>
  utils.withPgClient(async (client) => Number((await client.query("SELECT count(*) AS n FROM graphile_worker.jobs")).rows[0].n));

// Sessions' ends as our queue writes them for SIMULATED sends; without
// CLAIM=1 the job's lock stands for our claim. Instants are microseconds.
const endSessions = `
  WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS v(communication, contact, tenant)),
  sent AS (
    INSERT INTO channel_sends (communication_id, tenant_id, channel, outcome, created_at)
    SELECT communication, tenant, 'SIMULATED', NULL, $4 FROM v ON CONFLICT (communication_id) DO NOTHING
  ), ended AS (
    UPDATE communications SET status = 'COMPLETED', status_updated_at = $4, session_ended_at = $4,
      aggregated_at = $4, lease_until = NULL, flagged = 0
    FROM v WHERE communications.id = v.communication AND communications.status IN ('PLANNED', 'IN_PROGRESS')
  )
  UPDATE contacts SET updated_at = $4, last_session_at = $4, revision = contacts.revision + 1
  FROM v WHERE contacts.id = v.contact`;
const claimSessions = `
  UPDATE communications SET status = 'IN_PROGRESS', status_updated_at = $2, lease_until = $3
  WHERE id = ANY($1::text[]) AND status = 'PLANNED'`;
const claim = process.env.CLAIM === "1";
const taskList = {
  noop: async () => {},
  outcome: async ({ communications, contacts, tenants }, helpers) => {
    await helpers.withPgClient(async (client) => {
      const now = Date.now() * 1000;
      if (claim) await client.query({ name: "claim_sessions", text: claimSessions, values: [communications, now, now + 300e6] });
      await client.query({ name: "end_sessions", text: endSessions, values: [communications, contacts, tenants, Date.now() * 1000] });
    });
  },
};

const started = process.hrtime.bigint();
const runner = await run({
  connectionString,
  concurrency: 16,
  noHandleSignals: true,
  pollInterval: 1000,
  logger: quiet,
  preset: batched ? { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } } : {},
  taskList,
});
// Done when every job's completion is written: the queue is empty.
while ((await waiting()) > 0) await new Promise((resolve) => setTimeout(resolve, 10));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await runner.stop();
await utils.release();
console.log(JSON.stringify({ jobs, seconds }));
