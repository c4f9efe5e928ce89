/**
 * The model client (src/gitai/llm/model-client.ts) against the model stand-in on loopback: what the request looks
 * like on the wire for OpenAI's own API and for a server named by baseUrl, and what a rate limit, a timeout or an
 * error that echoes the key become.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ModelClient, ModelError, type ModelSettings } from "../../../src/gitai/llm/model-client.ts";
import { startModelStandin, type ModelStandin } from "../../helpers/model-standin.ts";

const KEY = "sk-unit-model-key-0001";
const question = [{ role: "user" as const, content: "Hello?" }];

describe("ModelClient", () => {
  let model: ModelStandin;
  const savedBaseUrl = process.env.OPENAI_BASE_URL;
  const settings = (over: Partial<ModelSettings> = {}): ModelSettings => ({ baseUrl: model.baseUrl, model: "standin-large", temperature: 0.2, maxTokens: 300, apiKey: KEY, ...over });
  const completions = () => model.requests.filter((r) => r.path === "/v1/chat/completions");

  before(async () => {
    model = await startModelStandin();
  });
  after(() => model.close());

  test("no baseUrl means OpenAI's own API: the token limit goes as max_completion_tokens", async () => {
    // With no baseUrl the library goes to https://api.openai.com/v1 unless OPENAI_BASE_URL says otherwise: here, the
    // stand-in, so that the request Gitai builds for OpenAI can be seen without reaching OpenAI.
    process.env.OPENAI_BASE_URL = model.baseUrl;
    try {
      model.reset();
      const reply = await new ModelClient(settings({ baseUrl: undefined }), { maxRetries: 0 }).complete(question, []);
      assert.equal(reply.content, "ok");
      const [sent] = completions();
      assert.deepEqual([sent!.body.model, sent!.body.temperature, sent!.body.max_completion_tokens, "max_tokens" in sent!.body], ["standin-large", 0.2, 300, false]);
      assert.equal(sent!.headers.authorization, `Bearer ${KEY}`);
    } finally {
      if (savedBaseUrl === undefined) delete process.env.OPENAI_BASE_URL;
      else process.env.OPENAI_BASE_URL = savedBaseUrl;
    }
  });

  test("a server named by baseUrl gets max_tokens, which self-hosted servers understand; no limit sends neither", async () => {
    model.reset();
    await new ModelClient(settings(), { maxRetries: 0 }).complete(question, []);
    await new ModelClient(settings({ maxTokens: undefined }), { maxRetries: 0 }).complete(question, []);
    const [limited, unlimited] = completions();
    assert.deepEqual([limited!.body.max_tokens, "max_completion_tokens" in limited!.body], [300, false]);
    assert.deepEqual(["max_tokens" in unlimited!.body, "max_completion_tokens" in unlimited!.body], [false, false]);
  });

  test("a rate limit (429) is retried after the time the provider asks for", async () => {
    model.reset();
    model.script({ status: 429, error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" }, headers: { "retry-after": "1" } }, { text: "after the wait" });
    const reply = await new ModelClient(settings(), { maxRetries: 2 }).complete(question, []);
    assert.equal(reply.content, "after the wait");
    const [first, second] = completions();
    assert.ok(second!.at.getTime() - first!.at.getTime() >= 999, `Retry-After: 1 honoured (${second!.at.getTime() - first!.at.getTime()} ms)`);
  });

  test("a rate limit that lasts becomes a ModelError saying so, after the retries", async () => {
    model.reset();
    model.setDefault({ status: 429, error: { message: "Rate limit reached", type: "requests" }, headers: { "retry-after-ms": "5" } });
    const error = await new ModelClient(settings(), { maxRetries: 2 }).complete(question, []).catch((e: unknown) => e);
    assert.ok(error instanceof ModelError);
    assert.deepEqual([error.kind, error.message, error.httpStatus], ["rate-limited", "the provider's rate limit was reached", 429]);
    assert.equal(completions().length, 3, "the first attempt and two retries");
  });

  test("a model that does not answer in time becomes a timeout ModelError", async () => {
    model.reset();
    model.setDefault({ until: new Promise(() => undefined), then: { text: "never" } });
    const error = await new ModelClient(settings(), { timeoutMs: 300, maxRetries: 0 }).complete(question, []).catch((e: unknown) => e);
    assert.ok(error instanceof ModelError);
    assert.deepEqual([error.kind, error.message], ["timeout", "the model did not answer in time"]);
  });

  test("a provider that echoes the key in its error never gets it into the error text", async () => {
    model.reset();
    model.setDefault({ status: 400, error: { message: `Incorrect API key provided: ${KEY}.` } });
    const error = await new ModelClient(settings(), { maxRetries: 0 }).complete(question, []).catch((e: unknown) => e);
    assert.ok(error instanceof ModelError);
    assert.equal(error.kind, "refused");
    assert.ok(!error.message.includes(KEY), error.message);
    assert.match(error.message, /\[key\]/);
  });
});
