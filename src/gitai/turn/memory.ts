import type { ChatMessage } from "../llm/model-client.ts";

/**
 * What the agent remembers of each room's conversation: the questions it answered and its answers, newest
 * last, bounded by a number of messages and of characters (the oldest go first). In memory only: a restart
 * forgets every conversation — by design, nothing said in a room is written to disk.
 */
export class ConversationMemory {
  private readonly rooms = new Map<string, ChatMessage[]>();
  private readonly maxMessages: number;
  private readonly maxChars: number;

  constructor(options: { maxMessages?: number; maxChars?: number } = {}) {
    this.maxMessages = options.maxMessages ?? 20;
    this.maxChars = options.maxChars ?? 16_000;
  }

  history(room: string): ChatMessage[] {
    return [...(this.rooms.get(room) ?? [])];
  }

  remember(room: string, question: string, answer: string): void {
    const messages = [...(this.rooms.get(room) ?? []), { role: "user" as const, content: question }, { role: "assistant" as const, content: answer }];
    while (messages.length > this.maxMessages || (messages.length > 2 && size(messages) > this.maxChars)) messages.splice(0, 2);
    this.rooms.set(room, messages);
  }

  forget(): void {
    this.rooms.clear();
  }
}

const size = (messages: readonly ChatMessage[]) => messages.reduce((n, m) => n + (typeof m.content === "string" ? m.content.length : 0), 0);
