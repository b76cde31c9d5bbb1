/**
 * Seed S0's workflow as n8n workflow JSON: Webhook `/campanha` -> Code node "Passo" (one batch through
 * `engine.step`) -> IF "Tem pendentes?" -> true: HTTP Request POSTs the next call to `/campanha` with
 * `continuar: true` and the execution ends; false: a report item, and no call.
 * The Code node's source is `workflow/passo.js`; `pnpm --filter @disparo/example-n8n workflow` writes
 * `workflow/campanha.workflow.json` from it (a test checks the two agree).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const WORKFLOW_ID = 'disparoCampanha0';
export const WEBHOOK_PATH = 'campanha';
export const workflowFile = fileURLToPath(new URL('../workflow/campanha.workflow.json', import.meta.url));
export const codeFile = fileURLToPath(new URL('../workflow/passo.js', import.meta.url));

export function passoCode(): string {
  return readFileSync(codeFile, 'utf8');
}

export function campaignWorkflow(code = passoCode()): Record<string, unknown> {
  return {
    id: WORKFLOW_ID,
    name: 'Disparo: campanha em lotes (S0)',
    active: false,
    settings: { executionOrder: 'v1' },
    nodes: [
      {
        id: '6f1d2c0e-0b3a-4c41-9d55-3f1a2b7c8d01',
        name: 'Webhook /campanha',
        type: 'n8n-nodes-base.webhook',
        typeVersion: 2,
        position: [0, 0],
        webhookId: '0d6c2f7e-3a9b-4f1e-8c5d-2b7a9e4f1c30',
        // Answer at once: the caller (the previous execution's HTTP Request) must not wait for this one.
        parameters: { httpMethod: 'POST', path: WEBHOOK_PATH, responseMode: 'onReceived', options: {} },
      },
      {
        id: '6f1d2c0e-0b3a-4c41-9d55-3f1a2b7c8d02',
        name: 'Passo (um lote)',
        type: 'n8n-nodes-base.code',
        typeVersion: 2,
        position: [260, 0],
        parameters: { mode: 'runOnceForAllItems', language: 'javaScript', jsCode: code },
      },
      {
        id: '6f1d2c0e-0b3a-4c41-9d55-3f1a2b7c8d03',
        name: 'Tem pendentes?',
        type: 'n8n-nodes-base.if',
        typeVersion: 2.2,
        position: [520, 0],
        parameters: {
          conditions: {
            options: { caseSensitive: true, leftValue: '', typeValidation: 'strict', version: 2 },
            conditions: [
              {
                id: '9b0f3e1a-7c2d-4e5f-8a9b-1c2d3e4f5a60',
                leftValue: '={{ $json.continuar }}',
                rightValue: '',
                operator: { type: 'boolean', operation: 'true', singleValue: true },
              },
            ],
            combinator: 'and',
          },
          options: {},
        },
      },
      {
        id: '6f1d2c0e-0b3a-4c41-9d55-3f1a2b7c8d04',
        name: 'Chamar próximo lote (webhook)',
        type: 'n8n-nodes-base.httpRequest',
        typeVersion: 4.2,
        position: [780, -100],
        parameters: {
          method: 'POST',
          url: '={{ $env.DISPARO_CAMPANHA_URL }}',
          sendBody: true,
          specifyBody: 'json',
          jsonBody: '={{ JSON.stringify($json.proxima_chamada) }}',
          options: {},
        },
      },
      {
        id: '6f1d2c0e-0b3a-4c41-9d55-3f1a2b7c8d05',
        name: 'Relatório (sem chamada)',
        type: 'n8n-nodes-base.set',
        typeVersion: 3.4,
        position: [780, 100],
        parameters: {
          assignments: {
            assignments: [
              {
                id: '2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e60',
                name: 'relatorio',
                value:
                  '=Campanha {{ $json.campanha_id }}: {{ $json.acao }}, {{ $json.status_execucao }}, lote {{ $json.lote_atual }}/{{ $json.total_lotes }}, {{ $json.contatos_processados }} processados, {{ $json.contatos_pendentes }} pendentes',
                type: 'string',
              },
            ],
          },
          includeOtherFields: true,
          options: {},
        },
      },
    ],
    connections: {
      'Webhook /campanha': { main: [[{ node: 'Passo (um lote)', type: 'main', index: 0 }]] },
      'Passo (um lote)': { main: [[{ node: 'Tem pendentes?', type: 'main', index: 0 }]] },
      'Tem pendentes?': {
        main: [
          [{ node: 'Chamar próximo lote (webhook)', type: 'main', index: 0 }],
          [{ node: 'Relatório (sem chamada)', type: 'main', index: 0 }],
        ],
      },
    },
    pinData: {},
  };
}

export function workflowJson(): string {
  return `${JSON.stringify(campaignWorkflow(), null, 2)}\n`;
}
