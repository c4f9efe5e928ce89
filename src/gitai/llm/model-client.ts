/**
 * The model, through the official `openai` client: the OpenAI-compatible Chat Completions API with tool
 * calling, which OpenAI, Azure OpenAI, OpenRouter, Ollama, vLLM, llama.cpp and LM Studio all serve. The client
 * retries rate limits (honouring Retry-After), server errors and timeouts with exponential backoff; what still
 * fails becomes a ModelError saying what kind of failure it was — never with the API key in it.
 */
import OpenAI from "openai";
import type { ChatCompletionFunctionTool, ChatCompletionMessageParam } from "openai/resources/chat/completions";

export type ChatMessage = ChatCompletionMessageParam;
export type ToolDefinition = ChatCompletionFunctionTool;

export interface ModelSettings {
  baseUrl: string | undefined;
  model: string;
  temperature: number | undefined;
  /** 0 or undefined: the provider's default. */
  maxTokens: number | undefined;
  apiKey: string;
}

export interface ModelReply {
  content: string | null;
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  usage: { promptTokens: number; completionTokens: number } | undefined;
  /** `length`: the answer was cut at the token limit. */
  finishReason: string | null;
}

export type ModelErrorKind = "rate-limited" | "unavailable" | "timeout" | "unreachable" | "refused" | "bad-reply";

export class ModelError extends Error {
  readonly kind: ModelErrorKind;
  readonly httpStatus: number | undefined;
  constructor(kind: ModelErrorKind, message: string, httpStatus?: number) {
    super(message);
    this.name = "ModelError";
    this.kind = kind;
    this.httpStatus = httpStatus;
  }
}

export class ModelClient {
  readonly settings: ModelSettings;
  private readonly client: OpenAI;

  constructor(settings: ModelSettings, options: { timeoutMs?: number; maxRetries?: number } = {}) {
    this.settings = settings;
    this.client = new OpenAI({ apiKey: settings.apiKey, ...(settings.baseUrl ? { baseURL: settings.baseUrl } : {}), timeout: options.timeoutMs ?? 60_000, maxRetries: options.maxRetries ?? 3 });
  }

  async complete(messages: readonly ChatMessage[], tools: readonly ToolDefinition[]): Promise<ModelReply> {
    const { model, temperature, maxTokens } = this.settings;
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    try {
      completion = await this.client.chat.completions.create({
        model,
        messages: [...messages],
        ...(tools.length > 0 ? { tools: [...tools] } : {}),
        ...(temperature !== undefined ? { temperature } : {}),
        // OpenAI's own API wants max_completion_tokens (its newer models refuse max_tokens); the compatible
        // servers one points baseUrl at (Ollama, vLLM, llama.cpp, LM Studio) have long understood max_tokens.
        ...(maxTokens ? (this.settings.baseUrl ? { max_tokens: maxTokens } : { max_completion_tokens: maxTokens }) : {}),
      });
    } catch (error) {
      throw modelErrorOf(error, this.settings.apiKey);
    }
    const choice = completion.choices[0];
    if (!choice) throw new ModelError("bad-reply", "the model answered with no choice");
    const toolCalls = (choice.message.tool_calls ?? []).flatMap((c) => (c.type === "function" ? [{ id: c.id, name: c.function.name, arguments: c.function.arguments }] : []));
    return {
      content: choice.message.content ?? null,
      toolCalls,
      usage: completion.usage ? { promptTokens: completion.usage.prompt_tokens, completionTokens: completion.usage.completion_tokens } : undefined,
      finishReason: choice.finish_reason ?? null,
    };
  }

  /** Whether the API answers with this key (at configuration time): a refused key or URL shows before anyone asks. */
  async probe(): Promise<void> {
    try {
      await this.client.models.list({ maxRetries: 0, timeout: 10_000 });
    } catch (error) {
      // Some servers do not list models: only an unreachable URL or a refused key is a failure here.
      if (error instanceof OpenAI.NotFoundError) return;
      throw modelErrorOf(error, this.settings.apiKey);
    }
  }
}

/** `apiKey` is cut out of any text a provider sent back, should one echo it. */
function modelErrorOf(error: unknown, apiKey: string): ModelError {
  const clip = (text: string) => (apiKey ? text.split(apiKey).join("[key]") : text).replace(/\s+/g, " ").slice(0, 200);
  if (error instanceof ModelError) return error;
  if (error instanceof OpenAI.APIConnectionTimeoutError) return new ModelError("timeout", "the model did not answer in time");
  if (error instanceof OpenAI.APIConnectionError) {
    // The library says "Connection error."; the cause chain says why (ECONNREFUSED, ENOTFOUND, a TLS failure).
    const code = causeCode(error);
    return new ModelError("unreachable", `the model's base URL does not answer${code ? ` (${code})` : ""}`);
  }
  if (error instanceof OpenAI.RateLimitError) return new ModelError("rate-limited", "the provider's rate limit was reached", 429);
  if (error instanceof OpenAI.AuthenticationError || error instanceof OpenAI.PermissionDeniedError) return new ModelError("refused", "the provider refused the API key", error.status);
  if (error instanceof OpenAI.InternalServerError) return new ModelError("unavailable", `the provider failed (HTTP ${error.status})`, error.status);
  if (error instanceof OpenAI.APIError) return new ModelError("refused", `the provider refused the request (HTTP ${error.status}): ${clip(error.message)}`, error.status);
  return new ModelError("bad-reply", clip((error as Error)?.message ?? String(error)));
}

/** The first error code along an error's cause chain: only a code, never a message that could hold a URL or key. */
function causeCode(error: unknown): string | undefined {
  for (let e = error as { cause?: unknown; code?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string" && /^[A-Z_]+$/.test(e.code)) return e.code;
  }
  return undefined;
}
