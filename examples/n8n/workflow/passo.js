// Disparo: one batch of a campaign per n8n execution (seed S0). Code node, "Run Once for All Items".
// Needs, in n8n's environment (see examples/n8n/README.md):
//   NODE_FUNCTION_ALLOW_EXTERNAL=@disparo/core,@disparo/adapter-postgres,@disparo/transport-evolution,pg
//   the four packages installed where n8n's task runner resolves modules (n8n's own node_modules, or a
//   folder named by NODE_PATH), and N8N_BLOCK_ENV_ACCESS_IN_NODE=false, because settings come from $env:
//   `process` does not exist in the Code node's sandbox, and secrets do not belong in webhook bodies.
// Input: the Webhook node's item; its body is { campanha_id, continuar?, execucao_id?, chamada? }.
const { createEngine } = require('@disparo/core');
const { createPostgresStore } = require('@disparo/adapter-postgres');
const { createEvolutionTransport } = require('@disparo/transport-evolution');
const { Pool } = require('pg');

const setting = (name, fallback) => {
  const value = $env[name];
  if (value !== undefined && value !== '') return String(value);
  if (fallback !== undefined) return fallback;
  throw new Error(`Set ${name} in n8n's environment (with N8N_BLOCK_ENV_ACCESS_IN_NODE=false).`);
};
// A step must end before the task runner's timeout (N8N_RUNNERS_TASK_TIMEOUT, 300 s by default).
const budgetMs = Number(setting('DISPARO_STEP_BUDGET_MS', '240000'));
// A chain whose last call is older than this is considered lost: a new trigger takes it over.
const staleMs = Number(setting('DISPARO_CHAIN_STALE_MS', String(budgetMs + 60000)));

const body = $input.first().json.body || {};
const campaignId = String(body.campanha_id || body.campaignId || '');
if (!campaignId) throw new Error('POST /campanha needs { "campanha_id": "<id of a Disparo campaign>" }');

const pool = new Pool({ connectionString: setting('DISPARO_DATABASE_URL'), max: 3 });
pool.on('error', () => {}); // an idle connection dropped by the server; the next query reconnects
try {
  // The dashboard's table (S0's execucoes), one row per campaign, plus one log row per batch step.
  // `execucao_id` names the live self-calling chain and `chamada` counts its calls: a continuation
  // must carry both, so a repeated or stray call finds nothing to do.
  const ddl = await pool.connect();
  try {
    await ddl.query('BEGIN');
    await ddl.query("SELECT pg_advisory_xact_lock(hashtext('disparo_n8n.ddl'))");
    await ddl.query(`CREATE SCHEMA IF NOT EXISTS disparo_n8n;
      CREATE TABLE IF NOT EXISTS disparo_n8n.campanhas_execucoes (
        campanha_id text PRIMARY KEY,
        execucao_id uuid NOT NULL,
        chamada integer NOT NULL,
        status_execucao text NOT NULL,
        lote_atual integer NOT NULL DEFAULT 0,
        total_lotes integer NOT NULL DEFAULT 0,
        total_contatos_elegiveis integer NOT NULL DEFAULT 0,
        contatos_processados integer NOT NULL DEFAULT 0,
        contatos_pendentes integer NOT NULL DEFAULT 0,
        contatos_enviados integer NOT NULL DEFAULT 0,
        contatos_falhos integer NOT NULL DEFAULT 0,
        horario_inicio timestamptz NOT NULL DEFAULT now(),
        horario_fim timestamptz,
        proximo_passo_em timestamptz,
        atualizado_em timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS disparo_n8n.campanhas_execucoes_lotes (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        campanha_id text NOT NULL,
        execucao_id uuid NOT NULL,
        chamada integer NOT NULL,
        execucao_n8n text,
        lote integer NOT NULL,
        processados integer NOT NULL,
        pendentes integer NOT NULL,
        status_execucao text NOT NULL,
        em timestamptz NOT NULL DEFAULT now())`);
    await ddl.query('COMMIT');
  } catch (error) {
    await ddl.query('ROLLBACK');
    throw error;
  } finally {
    ddl.release();
  }

  // 1. Take the baton, or stand down.
  let chain;
  if (body.continuar === true || body.continuar === 'true') {
    const { rows } = await pool.query(
      `UPDATE disparo_n8n.campanhas_execucoes SET chamada = chamada + 1, atualizado_em = now()
        WHERE campanha_id = $1 AND execucao_id::text = $2 AND chamada = $3 RETURNING execucao_id, chamada`,
      [campaignId, String(body.execucao_id || ''), Number(body.chamada)],
    );
    chain = rows[0];
    if (!chain) return [{ json: { acao: 'ignorada', motivo: 'chamada repetida ou de uma cadeia substituída', campanha_id: campaignId } }];
  } else {
    // A new trigger starts a chain unless a live one is running (a concurrent or duplicate POST).
    const { rows } = await pool.query(
      `INSERT INTO disparo_n8n.campanhas_execucoes AS e (campanha_id, execucao_id, chamada, status_execucao)
       VALUES ($1, gen_random_uuid(), 1, 'em_andamento')
       ON CONFLICT (campanha_id) DO UPDATE SET execucao_id = gen_random_uuid(), chamada = 1, status_execucao = 'em_andamento',
         horario_inicio = now(), horario_fim = NULL, atualizado_em = now()
       WHERE e.status_execucao <> 'em_andamento' OR e.atualizado_em < now() - make_interval(secs => $2::double precision / 1000)
       RETURNING execucao_id, chamada`,
      [campaignId, staleMs],
    );
    chain = rows[0];
    if (!chain) return [{ json: { acao: 'ignorada', motivo: 'a campanha já está em andamento numa cadeia ativa', campanha_id: campaignId } }];
  }

  // 2. One batch.
  const instance = setting('DISPARO_EVOLUTION_INSTANCE');
  const accountId = setting('DISPARO_ACCOUNT_ID', instance);
  const store = createPostgresStore(pool, { schema: setting('DISPARO_SCHEMA', 'disparo') });
  await store.migrate();
  const engine = createEngine({
    store,
    accounts: [
      {
        id: accountId,
        transport: createEvolutionTransport({
          baseUrl: setting('DISPARO_EVOLUTION_URL'),
          apiKey: setting('DISPARO_EVOLUTION_API_KEY'),
          instance,
        }),
        // Pacing lives in the store, so it holds across executions.
        pacing: { intervalMs: { min: Number(setting('DISPARO_INTERVAL_MIN_MS', '5000')), max: Number(setting('DISPARO_INTERVAL_MAX_MS', '15000')) } },
      },
    ],
  });
  let before = await engine.getCampaign(campaignId);
  if (before.status === 'draft') before = await engine.start(campaignId);
  const result = await engine.step({ campaignId, maxBatches: 1, budgetMs });
  const p = await engine.progress(campaignId);

  // 3. What S0's dashboard reads.
  const STATUS = { running: 'em_andamento', completed: 'concluida', paused: 'pausada', cancelled: 'cancelada', failed: 'erro', scheduled: 'agendada', draft: 'rascunho' };
  const status = STATUS[p.status] || p.status;
  const waitMs = result.continueAt === null ? null : Math.max(0, result.continueAt - Date.now());
  // Call the next execution only when there is work now; a longer wait (send window, daily cap) ends
  // the chain, and the next trigger (a cron POST) takes it over once it is stale.
  const continuar = !result.done && waitMs !== null && waitMs <= 5000 && p.remaining > 0;
  const after = await engine.getCampaign(campaignId);
  const fim = after.finishedAt;
  await pool.query(
    `UPDATE disparo_n8n.campanhas_execucoes SET status_execucao = $3, lote_atual = $4, total_lotes = $5, total_contatos_elegiveis = $6,
       contatos_processados = $7, contatos_pendentes = $8, contatos_enviados = $9, contatos_falhos = $10,
       horario_inicio = COALESCE(to_timestamp($13::bigint / 1000.0), horario_inicio),
       horario_fim = CASE WHEN $11::bigint IS NULL THEN NULL ELSE to_timestamp($11::bigint / 1000.0) END,
       proximo_passo_em = CASE WHEN $12::bigint IS NULL THEN NULL ELSE to_timestamp($12::bigint / 1000.0) END, atualizado_em = now()
     WHERE campanha_id = $1 AND execucao_id = $2`,
    [campaignId, chain.execucao_id, status, p.currentBatch, p.totalBatches, p.counters.total, p.processed, p.remaining, p.sent, p.counters.failed, fim, result.continueAt, after.startedAt],
  );
  await pool.query(
    `INSERT INTO disparo_n8n.campanhas_execucoes_lotes (campanha_id, execucao_id, chamada, execucao_n8n, lote, processados, pendentes, status_execucao)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [campaignId, chain.execucao_id, chain.chamada, String($execution.id), Math.max(1, before.currentBatch), result.processed, p.remaining, status],
  );

  return [
    {
      json: {
        acao: continuar ? 'continuar' : result.done ? 'concluida' : 'parada',
        continuar,
        // The next call's payload (S0: execucao_id, campanha_id, trigger_tipo, continuar) plus the chain's count.
        proxima_chamada: { execucao_id: chain.execucao_id, campanha_id: campaignId, trigger_tipo: 'continuacao', continuar: true, chamada: chain.chamada },
        campanha_id: campaignId,
        status_execucao: status,
        lote_atual: p.currentBatch,
        total_lotes: p.totalBatches,
        contatos_processados: p.processed,
        contatos_pendentes: p.remaining,
        contatos_enviados: p.sent,
        processados_nesta_execucao: result.processed,
        horario_fim: fim === null ? null : new Date(fim).toISOString(),
      },
    },
  ];
} finally {
  await pool.end();
}
