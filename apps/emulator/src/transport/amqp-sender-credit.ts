import type { Sender } from 'rhea';

/**
 * The credit a server's sender link has left for more messages, `sent` being how many messages it
 * was given to send over its life. rhea counts a message against the link's credit only when it
 * writes it, on its next turn (`credit` down, `delivery_count` up), so the messages given since
 * are taken off here. Read alone, the credit let a pump that sends several messages in one turn go
 * on as if none had been sent: one Event Hubs reader, or one device's cloud-to-device link, took
 * all the places its connection shares among its links (the rest queued in rhea behind credit the
 * client never gave) and the connection's other readers or devices waited. A drain (the credit
 * spent, the delivery count moved past what was sent) leaves none.
 */
export function creditLeft(link: Sender, sent: number): number {
  const { credit, delivery_count: written } = link as unknown as { credit?: unknown; delivery_count?: unknown };
  if (typeof credit !== 'number' || typeof written !== 'number') return 0;
  return credit - Math.max(0, sent - written);
}
