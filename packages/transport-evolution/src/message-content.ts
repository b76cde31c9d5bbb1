/** Reading Evolution's `message` objects (Baileys `proto.IMessage` rendered as JSON). */

type Rec = Record<string, unknown>;

const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Wrappers whose inner `message` holds the real content. */
const WRAPPERS = ['ephemeralMessage', 'viewOnceMessage', 'viewOnceMessageV2', 'viewOnceMessageV2Extension', 'documentWithCaptionMessage', 'editedMessage'];

/** The text a person sees: the body of a text message, or the caption of a media message. */
export function messageText(message: unknown, depth = 0): string | null {
  if (!isRecord(message) || depth > 3) return null;
  const direct =
    str(message.conversation) ??
    (isRecord(message.extendedTextMessage) ? str(message.extendedTextMessage.text) : null) ??
    (isRecord(message.imageMessage) ? str(message.imageMessage.caption) : null) ??
    (isRecord(message.videoMessage) ? str(message.videoMessage.caption) : null) ??
    (isRecord(message.documentMessage) ? str(message.documentMessage.caption) : null) ??
    (isRecord(message.buttonsResponseMessage) ? str(message.buttonsResponseMessage.selectedDisplayText) : null) ??
    (isRecord(message.templateButtonReplyMessage) ? str(message.templateButtonReplyMessage.selectedDisplayText) : null) ??
    (isRecord(message.listResponseMessage) ? str(message.listResponseMessage.title) : null);
  if (direct !== null) return direct;
  for (const w of WRAPPERS) {
    const inner = message[w];
    if (isRecord(inner)) {
      const found = messageText(inner.message, depth + 1);
      if (found !== null) return found;
    }
  }
  return null;
}

/**
 * Evolution's `messageTimestamp` in epoch ms. It is epoch seconds as a number in v2.3 responses,
 * a string in older docs, and a protobuf Long (`{low, high}`) in raw Baileys objects.
 */
export function timestampMs(value: unknown): number | null {
  let seconds: number | null = null;
  if (typeof value === 'number' && Number.isFinite(value)) seconds = value;
  else if (typeof value === 'string' && /^\d+$/.test(value.trim())) seconds = Number(value.trim());
  else if (isRecord(value) && typeof value.low === 'number') seconds = (value.low >>> 0) + (typeof value.high === 'number' ? value.high * 2 ** 32 : 0);
  if (seconds === null || seconds <= 0) return null;
  // Tolerate a value already in milliseconds.
  return seconds > 1e12 ? Math.trunc(seconds) : Math.trunc(seconds * 1000);
}

/** Same text as a person reads it: trims, and treats CRLF and LF alike. */
export function sameText(a: string, b: string): boolean {
  const norm = (s: string) => s.replace(/\r\n?/g, '\n').trim();
  return norm(a) === norm(b);
}

/** Evolution `messageType` values for each core media type. */
export const MEDIA_MESSAGE_TYPES: Record<'image' | 'video' | 'document' | 'audio', string[]> = {
  image: ['imageMessage'],
  video: ['videoMessage', 'ptvMessage'],
  document: ['documentMessage', 'documentWithCaptionMessage'],
  audio: ['audioMessage'],
};
