import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeOperationError, type IDataObject, type ICredentialDataDecryptedObject, type ICredentialTestFunctions, type ICredentialsDecrypted } from 'n8n-workflow';
import { testDatabase } from '../../../packages/adapter-postgres/test/support.js';
import { FakeGraph } from '../../../packages/transport-cloud-api/test/fake-graph.js';
import { FakeEvolution } from '../../../packages/transport-evolution/test/fake-evolution.js';
import { Disparo } from '../nodes/Disparo/Disparo.node.js';
import { execute } from './harness.js';

let db: URL;
let fake: FakeEvolution;

const credentials = (overrides: ICredentialDataDecryptedObject = {}): ICredentialDataDecryptedObject => ({
  host: db.hostname,
  port: Number(db.port),
  database: db.pathname.slice(1),
  user: decodeURIComponent(db.username),
  password: decodeURIComponent(db.password),
  ssl: false,
  schema: 'disparo',
  provider: 'simulator',
  accountId: 'sim-1',
  intervalMinSeconds: 0,
  intervalMaxSeconds: 0,
  ...overrides,
});

/** What an expression like `{{ $json.name }}` gives for each item. */
const field = (name: string) => (item: IDataObject) => item[name];
type Contact = { cliente: { fone: string; nome: string }; pedido: string };

const evolution = () => credentials({ provider: 'evolution', evolutionUrl: fake.url, evolutionApiKey: 'k', evolutionInstance: 'node-01', accountId: '' });

beforeAll(async () => {
  db = new URL(await testDatabase('n8n_node'));
  fake = await FakeEvolution.start({ instance: 'node-01', apiKey: 'k' });
});

afterAll(async () => {
  await fake?.close();
});

const create = (id: string, creds = credentials(), template = 'Olá {{nome|cliente}}') =>
  execute({ credentials: creds, params: { operation: 'createCampaign', name: `Campanha ${id}`, template, options: { campaignId: id, batchSize: 2, batchPauseMinSeconds: 0, batchPauseMaxSeconds: 0 } } });

describe('Disparo node: a campaign from start to end', () => {
  it('creates, imports items, starts, steps batch by batch and reports progress', async () => {
    const [created] = await create('node-flow');
    expect(created!.json).toMatchObject({ campaignId: 'node-flow', status: 'draft', accountIds: ['sim-1'] });

    const contacts = [
      { telefone: '(11) 98765-0001', nome: 'Ana' },
      { telefone: '11 98765-0002', nome: 'Bia' },
      { telefone: '5511987650003', nome: 'Caio' },
      { telefone: '(11) 98765-0001', nome: 'Ana de novo' },
      { telefone: '123', nome: 'Inválido' },
    ];
    const imported = await execute({
      credentials: credentials(),
      items: contacts.map((c) => ({ ...c, campaignId: 'node-flow' })),
      params: { operation: 'addRecipients', campaignId: field('campaignId'), phone: field('telefone'), variableSource: 'allFields' },
    });
    expect(imported).toHaveLength(1);
    expect(imported[0]!.json).toMatchObject({ campaignId: 'node-flow', processed: 5, inserted: 3, duplicates: 1, invalid: 1 });
    expect(imported[0]!.pairedItem).toEqual([0, 1, 2, 3, 4].map((item) => ({ item })));

    const [started] = await execute({ credentials: credentials(), items: [{ campaignId: 'node-flow' }], params: { operation: 'start', campaignId: field('campaignId') } });
    expect(started!.json.status).toBe('running');

    const step = () => execute({ credentials: credentials(), params: { operation: 'step', campaignId: 'node-flow', maxBatches: 1, budgetSeconds: 20 } });
    const [first] = await step();
    expect(first!.json).toMatchObject({ campaignId: 'node-flow', done: false, status: 'running', processed: 2, remaining: 1 });
    const [second] = await step();
    expect(second!.json).toMatchObject({ done: true, status: 'completed', processed: 1, remaining: 0, continueAt: null });

    const [progress] = await execute({ credentials: credentials(), params: { operation: 'getProgress', campaignId: 'node-flow', includeBatches: true } });
    expect(progress!.json).toMatchObject({ status: 'completed', sent: 3, processed: 3, remaining: 0, currentBatch: 2, totalBatches: 2 });
    expect(progress!.json.batches).toHaveLength(2);
  });

  it('maps phone and template variables from each item (sent text checked at a fake Evolution server)', async () => {
    await create('node-map', evolution(), 'Oi {{primeiro_nome}}, seu pedido {{pedido|?}} chegou');
    const items = [
      { cliente: { fone: '5521987650001', nome: 'Maria Silva' }, pedido: 'A-1', campaignId: 'node-map' },
      { cliente: { fone: '5521987650002', nome: 'João Souza' }, pedido: 'B-2', campaignId: 'node-map' },
    ];
    const [imported] = await execute({
      credentials: evolution(),
      items,
      params: {
        operation: 'addRecipients',
        campaignId: 'node-map',
        phone: (item: IDataObject) => (item as unknown as Contact).cliente.fone,
        variableSource: 'mapped',
        variables: (item: IDataObject) => {
          const c = item as unknown as Contact;
          return { variable: [{ name: 'primeiro_nome', value: c.cliente.nome.split(' ')[0] }, { name: 'pedido', value: c.pedido }] };
        },
      },
    });
    expect(imported!.json).toMatchObject({ inserted: 2 });
    await execute({ credentials: evolution(), params: { operation: 'start', campaignId: 'node-map' } });
    const [result] = await execute({ credentials: evolution(), params: { operation: 'step', campaignId: 'node-map', maxBatches: 5, budgetSeconds: 20 } });
    expect(result!.json).toMatchObject({ done: true, status: 'completed' });
    const texts = Object.fromEntries(fake.stored.filter((m) => m.fromMe).map((m) => [m.number, m.text]));
    expect(texts).toMatchObject({ '5521987650001': 'Oi Maria, seu pedido A-1 chegou', '5521987650002': 'Oi João, seu pedido B-2 chegou' });
  });

  it('pauses, resumes and cancels; a step on a paused campaign sends nothing', async () => {
    await create('node-ctl');
    await execute({ credentials: credentials(), items: [{ phone: '5511987651001' }, { phone: '5511987651002' }, { phone: '5511987651003' }], params: { operation: 'addRecipients', campaignId: 'node-ctl', phone: field('phone'), variableSource: 'none' } });
    await execute({ credentials: credentials(), params: { operation: 'start', campaignId: 'node-ctl' } });
    const [paused] = await execute({ credentials: credentials(), params: { operation: 'pause', campaignId: 'node-ctl' } });
    expect(paused!.json).toMatchObject({ status: 'paused', pauseReason: 'manual' });
    const [idle] = await execute({ credentials: credentials(), params: { operation: 'step', campaignId: 'node-ctl', maxBatches: 1, budgetSeconds: 5 } });
    expect(idle!.json).toMatchObject({ status: 'paused', processed: 0, remaining: 3, continueAt: null });
    const [resumed] = await execute({ credentials: credentials(), params: { operation: 'resume', campaignId: 'node-ctl' } });
    expect(resumed!.json.status).toBe('running');
    const [cancelled] = await execute({ credentials: credentials(), params: { operation: 'cancel', campaignId: 'node-ctl' } });
    expect(cancelled!.json.status).toBe('cancelled');
  });
});

describe('Disparo node: a WhatsApp Cloud API number', () => {
  it("sends through Meta's Graph API, paced by the credential's rate (checked at a fake Graph server)", async () => {
    const graph = await FakeGraph.start({ numbers: [{ phoneNumberId: '100000000000077' }] });
    try {
      const cloud = credentials({ provider: 'cloudApi', cloudApiToken: graph.accessToken, cloudApiPhoneNumberId: '100000000000077', cloudApiRate: 20, cloudApiBaseUrl: graph.url, accountId: '' });
      const [created] = await create('node-cloud', cloud, 'Olá {{nome|cliente}}, seu pedido chegou');
      expect(created!.json).toMatchObject({ campaignId: 'node-cloud', accountIds: ['cloud-100000000000077'] });
      const contacts = Array.from({ length: 6 }, (_, i) => ({ telefone: `1198765${String(i).padStart(4, '0')}`, nome: `Cliente ${i}` }));
      await execute({ credentials: cloud, items: contacts, params: { operation: 'addRecipients', campaignId: 'node-cloud', phone: field('telefone'), variableSource: 'allFields' } });
      await execute({ credentials: cloud, params: { operation: 'start', campaignId: 'node-cloud' } });
      const [step] = await execute({ credentials: cloud, params: { operation: 'step', campaignId: 'node-cloud', maxBatches: 5, budgetSeconds: 20 } });
      expect(step!.json).toMatchObject({ done: true, status: 'completed', processed: 6, remaining: 0 });
      const accepted = graph.messages('100000000000077');
      expect(accepted.map((m) => m.to).sort()).toEqual(contacts.map((c) => `55${c.telefone}`).sort());
      expect(accepted.map((m) => m.text)).toContain('Olá Cliente 3, seu pedido chegou');
      expect(graph.maxInWindow('100000000000077', 1_000)).toBeLessThanOrEqual(20);
    } finally {
      await graph.close();
    }
  });
});

describe('Disparo node: errors', () => {
  it("surface as NodeOperationError with the library's message and code", async () => {
    await create('node-err');
    const attempt = execute({ credentials: credentials(), params: { operation: 'pause', campaignId: 'node-err' } });
    await expect(attempt).rejects.toBeInstanceOf(NodeOperationError);
    await expect(attempt).rejects.toMatchObject({ message: expect.stringMatching(/node-err.*draft.*paused/i), description: 'Disparo error code: INVALID_TRANSITION' });

    const missing = execute({ credentials: credentials(), params: { operation: 'getProgress', campaignId: 'nope' } });
    await expect(missing).rejects.toMatchObject({ message: expect.stringContaining('nope'), description: 'Disparo error code: NOT_FOUND' });

    const empty = execute({ credentials: credentials(), params: { operation: 'start', campaignId: 'node-err' } });
    await expect(empty).rejects.toMatchObject({ message: expect.stringContaining('has no recipients'), description: 'Disparo error code: VALIDATION' });

    const badTemplate = execute({ credentials: credentials(), params: { operation: 'createCampaign', name: 'x', template: '', options: {} } });
    await expect(badTemplate).rejects.toBeInstanceOf(NodeOperationError);
  });

  it('with "Continue On Fail", a failing item becomes an error item and the others go on', async () => {
    await create('node-cof');
    await execute({ credentials: credentials(), items: [{ phone: '5511987652001' }], params: { operation: 'addRecipients', campaignId: 'node-cof', phone: field('phone'), variableSource: 'none' } });
    const out = await execute({
      credentials: credentials(),
      continueOnFail: true,
      items: [{ id: 'missing-one' }, { id: 'node-cof' }],
      params: { operation: 'start', campaignId: field('id') },
    });
    expect(out[0]!.json.error).toMatch(/missing-one/);
    expect(out[0]!.pairedItem).toEqual({ item: 0 });
    expect(out[1]!.json).toMatchObject({ campaignId: 'node-cof', status: 'running' });
  });

  it('a database it cannot reach is a NodeOperationError too', async () => {
    const attempt = execute({ credentials: credentials({ password: 'wrong' }), params: { operation: 'getProgress', campaignId: 'x' } });
    await expect(attempt).rejects.toBeInstanceOf(NodeOperationError);
    await expect(attempt).rejects.toMatchObject({ message: expect.stringMatching(/password/i) });
  });
});

describe('Disparo credential test', () => {
  const test = (data: ICredentialDataDecryptedObject) =>
    new Disparo().methods.credentialTest.disparoConnectionTest.call({} as ICredentialTestFunctions, { id: '1', name: 'c', type: 'disparoApi', data } as ICredentialsDecrypted);

  it('connects, migrates and asks the provider for the account', async () => {
    expect(await test(evolution())).toEqual({ status: 'OK', message: 'Connected; sender account "node-01" is open' });
  });

  it('says what failed: the database, or the provider', async () => {
    expect(await test(credentials({ password: 'wrong' }))).toMatchObject({ status: 'Error', message: expect.stringMatching(/password/i) });
    const unreachable = await test(credentials({ provider: 'evolution', evolutionUrl: 'http://127.0.0.1:9', evolutionApiKey: 'k', evolutionInstance: 'x' }));
    expect(unreachable).toMatchObject({ status: 'Error', message: expect.stringContaining('provider did not answer') });
  });
});
