import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createEngine, type Engine } from '@disparo/core';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { testDatabase } from '../../../packages/adapter-postgres/test/support.js';
import { FakeEvolution } from '../../../packages/transport-evolution/test/fake-evolution.js';
import { campaignWorkflow, passoCode, workflowFile, workflowJson, WEBHOOK_PATH } from '../src/workflow.js';
import { runCodeNode, webhookItem, type CodeNodeItem } from './code-node.js';

const ACCOUNT = 'campaign-01';
let url: string;
let pool: pg.Pool;
let fake: FakeEvolution;
let admin: Engine;
let env: Record<string, string>;
const code = passoCode();

beforeAll(async () => {
  url = await testDatabase('n8n_passo');
  pool = new pg.Pool({ connectionString: url, max: 4 });
  const store = createPostgresStore(pool);
  await store.migrate();
  admin = createEngine({ store });
  fake = await FakeEvolution.start({ instance: ACCOUNT, apiKey: 'k' });
  env = {
    DISPARO_DATABASE_URL: url,
    DISPARO_EVOLUTION_URL: fake.url,
    DISPARO_EVOLUTION_API_KEY: 'k',
    DISPARO_EVOLUTION_INSTANCE: ACCOUNT,
    DISPARO_INTERVAL_MIN_MS: '0',
    DISPARO_INTERVAL_MAX_MS: '0',
    DISPARO_STEP_BUDGET_MS: '20000',
  };
});

afterAll(async () => {
  await fake?.close();
  await pool?.end();
});

async function seed(id: string, count: number, batchSize: number, prefix: string): Promise<string[]> {
  await admin.createCampaign({ id, name: id, template: 'Oi {{nome}}', accountIds: [ACCOUNT], batchSize, batchPauseMs: { min: 0, max: 0 }, allowUnknownAccounts: true });
  const phones = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`);
  await admin.addRecipients(id, phones.map((phone, i) => ({ phone, vars: { nome: `N${i}` } })));
  return phones;
}

const sentTo = (phones: string[]) => fake.stored.filter((m) => m.fromMe && phones.includes(m.number)).map((m) => m.number);
const call = async (body: unknown): Promise<Record<string, any>> => {
  const out: CodeNodeItem[] = await runCodeNode(code, [webhookItem(body)], env);
  expect(out).toHaveLength(1);
  return out[0]!.json;
};
const row = async (id: string) => (await pool.query('SELECT * FROM disparo_n8n.campanhas_execucoes WHERE campanha_id = $1', [id])).rows[0];

describe('the Code-node step (seed S0)', () => {
  it('sends one batch per call, continues with continuar: true, and ends with a report when nothing is pending', async () => {
    const phones = await seed('s0-chain', 10, 4, '5511960');
    const first = await call({ campanha_id: 's0-chain' });
    expect(first).toMatchObject({ acao: 'continuar', continuar: true, status_execucao: 'em_andamento', lote_atual: 2, total_lotes: 3, contatos_processados: 4, contatos_pendentes: 6 });
    expect(first.proxima_chamada).toMatchObject({ campanha_id: 's0-chain', continuar: true, chamada: 1, trigger_tipo: 'continuacao' });
    expect(sentTo(phones)).toHaveLength(4);

    const second = await call(first.proxima_chamada);
    expect(second).toMatchObject({ acao: 'continuar', lote_atual: 3, contatos_processados: 8 });
    expect(second.proxima_chamada.chamada).toBe(2);
    const last = await call(second.proxima_chamada);
    expect(last).toMatchObject({ acao: 'concluida', continuar: false, status_execucao: 'concluida', lote_atual: 3, contatos_processados: 10, contatos_pendentes: 0 });
    expect(last.horario_fim).not.toBeNull();

    const sent = sentTo(phones);
    expect(sent).toHaveLength(10);
    expect(new Set(sent).size).toBe(10);
    expect(await row('s0-chain')).toMatchObject({ status_execucao: 'concluida', lote_atual: 3, total_lotes: 3, total_contatos_elegiveis: 10, contatos_processados: 10, contatos_pendentes: 0, contatos_enviados: 10 });
    expect((await row('s0-chain')).horario_fim).toBeInstanceOf(Date);
    const log = await pool.query('SELECT lote, processados FROM disparo_n8n.campanhas_execucoes_lotes WHERE campanha_id = $1 ORDER BY id', ['s0-chain']);
    expect(log.rows).toEqual([
      { lote: 1, processados: 4 },
      { lote: 2, processados: 4 },
      { lote: 3, processados: 2 },
    ]);
  });

  it('a duplicate trigger while the chain is live, and a repeated continuation, change nothing', async () => {
    const phones = await seed('s0-dup', 6, 3, '5511961');
    const [a, b] = await Promise.all([call({ campanha_id: 's0-dup' }), call({ campanha_id: 's0-dup' })]);
    const [winner, loser] = a.acao === 'ignorada' ? [b, a] : [a, b];
    expect(winner.acao).toBe('continuar');
    expect(loser).toMatchObject({ acao: 'ignorada' });
    expect(sentTo(phones)).toHaveLength(3);

    // The HTTP Request fires twice (a retry): the second copy of the same call stands down.
    const [c, d] = await Promise.all([call(winner.proxima_chamada), call(winner.proxima_chamada)]);
    expect([c.acao, d.acao].sort()).toEqual(['concluida', 'ignorada']);
    expect(await call({ campanha_id: 's0-dup', continuar: true, execucao_id: winner.proxima_chamada.execucao_id, chamada: 99 })).toMatchObject({ acao: 'ignorada' });
    const sent = sentTo(phones);
    expect(sent).toHaveLength(6);
    expect(new Set(sent).size).toBe(6);
  });

  it('a lost call loses nothing: once the chain is stale the next trigger takes it over, and the old chain stands down', async () => {
    const phones = await seed('s0-lost', 6, 2, '5511962');
    const first = await call({ campanha_id: 's0-lost' });
    expect(first.acao).toBe('continuar');
    // first.proxima_chamada is never delivered. A trigger right away finds the chain live.
    expect((await call({ campanha_id: 's0-lost' })).acao).toBe('ignorada');
    await pool.query("UPDATE disparo_n8n.campanhas_execucoes SET atualizado_em = now() - interval '1 hour' WHERE campanha_id = 's0-lost'");
    let next = await call({ campanha_id: 's0-lost' });
    expect(next.acao).toBe('continuar');
    expect(next.proxima_chamada.execucao_id).not.toBe(first.proxima_chamada.execucao_id);
    expect((await call(first.proxima_chamada)).acao).toBe('ignorada');
    while (next.continuar) next = await call(next.proxima_chamada);
    expect(next.acao).toBe('concluida');
    const sent = sentTo(phones);
    expect(sent).toHaveLength(6);
    expect(new Set(sent).size).toBe(6);
  });

  it('a paused campaign reports pausada and the chain stops calling', async () => {
    const phones = await seed('s0-pause', 6, 2, '5511963');
    const first = await call({ campanha_id: 's0-pause' });
    await admin.pause('s0-pause');
    const after = await call(first.proxima_chamada);
    expect(after).toMatchObject({ acao: 'parada', continuar: false, status_execucao: 'pausada', contatos_pendentes: 4 });
    expect(await row('s0-pause')).toMatchObject({ status_execucao: 'pausada' });
    expect(sentTo(phones)).toHaveLength(2);
  });

  it('says what is missing: the campaign id in the body, a setting in $env', async () => {
    await expect(call({})).rejects.toThrow(/campanha_id/);
    await expect(runCodeNode(code, [webhookItem({ campanha_id: 'x' })], { ...env, DISPARO_DATABASE_URL: '' })).rejects.toThrow(/Set DISPARO_DATABASE_URL/);
  });
});

describe('the workflow JSON', () => {
  it('is generated from workflow/passo.js (run `pnpm --filter @disparo/example-n8n workflow` after editing it)', () => {
    expect(readFileSync(workflowFile, 'utf8')).toBe(workflowJson());
  });

  it("wires S0: webhook /campanha answering at once -> step -> if continuar, POST the next call to itself; otherwise a report", () => {
    const wf = campaignWorkflow() as { nodes: Array<Record<string, any>>; connections: Record<string, any> };
    const byType = (t: string) => wf.nodes.find((n) => n.type === t)!;
    expect(byType('n8n-nodes-base.webhook').parameters).toMatchObject({ httpMethod: 'POST', path: WEBHOOK_PATH, responseMode: 'onReceived' });
    expect(byType('n8n-nodes-base.code').parameters.jsCode).toBe(passoCode());
    const http = byType('n8n-nodes-base.httpRequest');
    expect(http.parameters).toMatchObject({ method: 'POST', url: '={{ $env.DISPARO_CAMPANHA_URL }}', jsonBody: '={{ JSON.stringify($json.proxima_chamada) }}' });
    const iff = byType('n8n-nodes-base.if');
    expect(iff.parameters.conditions.conditions[0].leftValue).toBe('={{ $json.continuar }}');
    const [whenTrue, whenFalse] = wf.connections[iff.name].main;
    expect(whenTrue[0].node).toBe(http.name);
    expect(whenFalse[0].node).toBe(byType('n8n-nodes-base.set').name);
  });
});
