import { z } from 'zod';
import { ValidationError } from '@disparo/core/transport';

/** Every event name `POST /webhook/set` accepts (Evolution v2.3.6, `EventController.events`). */
export const EVOLUTION_WEBHOOK_EVENTS = [
  'APPLICATION_STARTUP',
  'QRCODE_UPDATED',
  'MESSAGES_SET',
  'MESSAGES_UPSERT',
  'MESSAGES_EDITED',
  'MESSAGES_UPDATE',
  'MESSAGES_DELETE',
  'SEND_MESSAGE',
  'SEND_MESSAGE_UPDATE',
  'CONTACTS_SET',
  'CONTACTS_UPSERT',
  'CONTACTS_UPDATE',
  'PRESENCE_UPDATE',
  'CHATS_SET',
  'CHATS_UPSERT',
  'CHATS_UPDATE',
  'CHATS_DELETE',
  'GROUPS_UPSERT',
  'GROUP_UPDATE',
  'GROUP_PARTICIPANTS_UPDATE',
  'CONNECTION_UPDATE',
  'LABELS_EDIT',
  'LABELS_ASSOCIATION',
  'CALL',
  'TYPEBOT_START',
  'TYPEBOT_CHANGE_STATUS',
  'REMOVE_INSTANCE',
  'LOGOUT_INSTANCE',
  'INSTANCE_CREATE',
  'INSTANCE_DELETE',
  'STATUS_INSTANCE',
] as const;

export type EvolutionWebhookEvent = (typeof EVOLUTION_WEBHOOK_EVENTS)[number];

/**
 * What a campaign needs: receipts (`MESSAGES_UPDATE`), the accepted copy of each send
 * (`SEND_MESSAGE`, used by `lookup`), replies and opt-outs (`MESSAGES_UPSERT`), and account state
 * (`CONNECTION_UPDATE`, `STATUS_INSTANCE`, `LOGOUT_INSTANCE`). Never an empty list: Evolution reads
 * an empty list as "every event".
 */
export const DEFAULT_WEBHOOK_EVENTS: readonly EvolutionWebhookEvent[] = [
  'SEND_MESSAGE',
  'MESSAGES_UPDATE',
  'MESSAGES_UPSERT',
  'CONNECTION_UPDATE',
  'STATUS_INSTANCE',
  'LOGOUT_INSTANCE',
];

/** Default header for `webhook.secret`. */
export const DEFAULT_SECRET_HEADER = 'x-disparo-secret';

export const webhookSetInputSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
    events: z.array(z.enum(EVOLUTION_WEBHOOK_EVENTS)).min(1).optional(),
    /** Evolution turns this header into `Authorization: Bearer <JWT>` (recommended). */
    jwtKey: z.string().min(1).optional(),
    /** A static secret sent in `headerName`. */
    secret: z.string().min(1).optional(),
    headerName: z
      .string()
      .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
      .refine((h) => !['authorization', 'jwt_key', 'content-type'].includes(h.toLowerCase()), 'is reserved')
      .optional(),
    /** Extra static headers (e.g. a tenant id). */
    headers: z.record(z.string(), z.string()).optional(),
    /** Evolution appends `/<event-name>` to the URL per event when true. */
    byEvents: z.boolean().default(false),
    /** Media as base64 inside webhooks; not needed by Disparo. */
    base64: z.boolean().default(false),
    enabled: z.boolean().default(true),
  })
  .strict();

export type WebhookSetInput = z.input<typeof webhookSetInputSchema>;

export interface WebhookSetRequest {
  webhook: {
    enabled: boolean;
    url: string;
    headers?: Record<string, string>;
    byEvents: boolean;
    base64: boolean;
    events: EvolutionWebhookEvent[];
  };
}

/**
 * The body of `POST /webhook/set/{instance}` (CONTRACTS.md 1.8) that makes Evolution send this
 * transport what it needs, authenticated with `jwtKey` (as the `jwt_key` header) and/or `secret`.
 */
export function webhookSetRequest(input: WebhookSetInput): WebhookSetRequest {
  const parsed = webhookSetInputSchema.safeParse(input);
  if (!parsed.success) throw ValidationError.fromZod('Evolution webhook settings', parsed.error);
  const o = parsed.data;
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.jwtKey) headers.jwt_key = o.jwtKey;
  if (o.secret) headers[(o.headerName ?? DEFAULT_SECRET_HEADER).toLowerCase()] = o.secret;
  return {
    webhook: {
      enabled: o.enabled,
      url: o.url,
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      byEvents: o.byEvents,
      base64: o.base64,
      events: [...new Set(o.events ?? DEFAULT_WEBHOOK_EVENTS)],
    },
  };
}
