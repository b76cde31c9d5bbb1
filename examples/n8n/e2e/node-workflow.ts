/**
 * A workflow that runs every operation of the Disparo community node (type `CUSTOM.disparo` when loaded
 * from n8n's custom folder): create -> add recipients (from items, phone and variables mapped) ->
 * start -> pause -> resume -> run step -> get progress, then create a second campaign and cancel it.
 * The webhook answers with the last node's output (a summary).
 */
export const NODE_WORKFLOW_ID = 'disparoNodeOps01';
export const NODE_WEBHOOK_PATH = 'disparo-no';
export const CREDENTIAL_ID = 'disparoCred00001';

export function nodeWorkflow(nodeType: string): Record<string, unknown> {
  const credentials = { disparoApi: { id: CREDENTIAL_ID, name: 'Disparo e2e' } };
  let x = 0;
  const node = (name: string, parameters: Record<string, unknown>, type = nodeType, typeVersion = 1) => ({
    id: `7a1b2c3d-0000-4000-8000-${String(++x).padStart(12, '0')}`,
    name,
    type,
    typeVersion,
    position: [x * 220, 0],
    parameters,
    ...(type === nodeType ? { credentials } : {}),
  });
  const nodes = [
    {
      ...node('Webhook', { httpMethod: 'POST', path: NODE_WEBHOOK_PATH, responseMode: 'lastNode', options: {} }, 'n8n-nodes-base.webhook', 2),
      webhookId: '1e2d3c4b-5a69-4788-9a0b-c1d2e3f4a5b6',
    },
    node('Criar campanha', {
      operation: 'createCampaign',
      name: 'Campanha pelo nó',
      template: '{Olá|Oi}, {{nome|cliente}}! Teste do nó Disparo.',
      options: { campaignId: '={{ $json.body.campaignId }}', batchSize: 3, batchPauseMinSeconds: 0, batchPauseMaxSeconds: 0 },
    }),
    node(
      'Contatos',
      {
        mode: 'runOnceForAllItems',
        language: 'javaScript',
        jsCode: "const id = $('Criar campanha').first().json.campaignId;\nreturn $('Webhook').first().json.body.contatos.map((c) => ({ json: { ...c, campaignId: id } }));",
      },
      'n8n-nodes-base.code',
      2,
    ),
    node('Adicionar contatos', { operation: 'addRecipients', campaignId: '={{ $json.campaignId }}', phone: '={{ $json.telefone }}', variableSource: 'allFields' }),
    node('Iniciar', { operation: 'start', campaignId: '={{ $json.campaignId }}' }),
    node('Pausar', { operation: 'pause', campaignId: '={{ $json.campaignId }}' }),
    node('Retomar', { operation: 'resume', campaignId: '={{ $json.campaignId }}' }),
    node('Passo', { operation: 'step', campaignId: '={{ $json.campaignId }}', maxBatches: 10, budgetSeconds: 60 }),
    node('Progresso', { operation: 'getProgress', campaignId: '={{ $json.campaignId }}' }),
    node('Criar outra', {
      operation: 'createCampaign',
      name: 'Campanha cancelada',
      template: 'Não deve sair',
      options: { campaignId: "={{ $('Webhook').first().json.body.campaignId + '-b' }}" },
    }),
    node('Cancelar', { operation: 'cancel', campaignId: '={{ $json.campaignId }}' }),
    node(
      'Resumo',
      {
        mode: 'runOnceForAllItems',
        language: 'javaScript',
        jsCode: [
          "const p = $('Progresso').first().json;",
          'return [{ json: {',
          "  criada: $('Criar campanha').first().json.status,",
          "  importados: $('Adicionar contatos').first().json,",
          "  iniciada: $('Iniciar').first().json.status,",
          "  pausada: $('Pausar').first().json.status,",
          "  retomada: $('Retomar').first().json.status,",
          "  passo: $('Passo').first().json,",
          '  progresso: { status: p.status, sent: p.sent, processed: p.processed, remaining: p.remaining, currentBatch: p.currentBatch, totalBatches: p.totalBatches },',
          "  cancelada: $('Cancelar').first().json.status,",
          '} }];',
        ].join('\n'),
      },
      'n8n-nodes-base.code',
      2,
    ),
  ];
  const connections: Record<string, unknown> = {};
  for (let i = 0; i < nodes.length - 1; i++) connections[nodes[i]!.name] = { main: [[{ node: nodes[i + 1]!.name, type: 'main', index: 0 }]] };
  return { id: NODE_WORKFLOW_ID, name: 'Disparo: operações do nó', active: false, settings: { executionOrder: 'v1' }, nodes, connections, pinData: {} };
}
