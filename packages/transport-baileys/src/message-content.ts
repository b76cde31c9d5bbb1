import type { AnyMessageContent } from 'baileys';

/** What the Baileys message content for an outbound message is. */
export function messageContent(message: {
  text: string;
  media?: { url: string; type: 'image' | 'video' | 'document' | 'audio'; mimeType?: string | null | undefined; fileName?: string | null | undefined } | null | undefined;
}): AnyMessageContent {
  const media = message.media;
  const caption = message.text.trim().length > 0 ? message.text : undefined;
  if (!media) return { text: message.text };
  const mimetype = media.mimeType ?? undefined;
  switch (media.type) {
    case 'image':
      return { image: { url: media.url }, ...(caption ? { caption } : {}), ...(mimetype ? { mimetype } : {}) };
    case 'video':
      return { video: { url: media.url }, ...(caption ? { caption } : {}), ...(mimetype ? { mimetype } : {}) };
    case 'audio':
      return { audio: { url: media.url }, ...(mimetype ? { mimetype } : {}) };
    case 'document':
      return {
        document: { url: media.url },
        mimetype: mimetype ?? 'application/octet-stream',
        ...(media.fileName ? { fileName: media.fileName } : {}),
        ...(caption ? { caption } : {}),
      };
  }
}
