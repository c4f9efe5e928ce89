import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";
import OpenAI, { APIConnectionTimeoutError, NotFoundError, RateLimitError } from "openai";
import { startModelStandin, type ModelStandin } from "../../helpers/model-standin.ts";

const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [{
  type: "function",
  function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
}];

// The point of the stand-in is that the official client cannot tell it from a provider, so every test goes through it.
describe("model stand-in, through the official openai client", () => {
  let standin: ModelStandin;
  let client: OpenAI;

  before(async () => {
    standin = await startModelStandin();
    client = new OpenAI({ apiKey: "sk-test", baseURL: standin.baseUrl, maxRetries: 0 });
  });
  beforeEach(() => standin.reset());
  after(() => standin.close());

  test("baseUrl is loopback and ends in /v1", () => {
    assert.match(standin.baseUrl, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  });

  test("a text reply round-trips as a chat.completion", async () => {
    standin.script({ text: "hello there" });
    const res = await client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "hi" }], temperature: 0, max_completion_tokens: 50 });
    assert.equal(res.object, "chat.completion");
    assert.equal(res.model, "gpt-test");
    assert.equal(res.choices[0]?.message.content, "hello there");
    assert.equal(res.choices[0]?.finish_reason, "stop");
    assert.ok(res.usage && res.usage.total_tokens === res.usage.prompt_tokens + res.usage.completion_tokens);
    assert.equal(standin.requests[0]?.body.temperature, 0);
    assert.equal(standin.requests[0]?.body.max_completion_tokens, 50);
  });

  test("the default answer is \"ok\" and can be changed", async () => {
    const ask = () => client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "?" }] });
    assert.equal((await ask()).choices[0]?.message.content, "ok");
    standin.setDefault({ text: "always this" });
    assert.equal((await ask()).choices[0]?.message.content, "always this");
  });

  test("tool calls come back as message.tool_calls; the follow-up carries the tool result", async () => {
    standin.script(
      { toolCalls: [{ name: "get_weather", arguments: { city: "Kyoto" } }] },
      (req) => {
        const messages = req.body.messages as Array<{ role: string; content?: string }>;
        return { text: `echo: ${messages.at(-1)?.content}` };
      },
    );
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: "user", content: "weather in Kyoto?" }];
    const first = await client.chat.completions.create({ model: "m", messages, tools: TOOLS, tool_choice: "auto" });
    const choice = first.choices[0];
    assert.equal(choice?.finish_reason, "tool_calls");
    const call = choice?.message.tool_calls?.[0];
    assert.ok(call && call.type === "function");
    assert.equal(call.id, "call_1");
    assert.equal(call.function.name, "get_weather");
    assert.deepEqual(JSON.parse(call.function.arguments), { city: "Kyoto" });

    messages.push(choice.message, { role: "tool", tool_call_id: call.id, content: "sunny, 24°C" });
    const second = await client.chat.completions.create({ model: "m", messages, tools: TOOLS });
    assert.equal(second.choices[0]?.message.content, "echo: sunny, 24°C");

    assert.equal(standin.requests.length, 2);
    const [req1, req2] = standin.requests;
    assert.equal(req1?.headers.authorization, "Bearer sk-test");
    assert.equal(req1?.path, "/v1/chat/completions");
    assert.deepEqual(req1?.body.tools, TOOLS);
    assert.equal(req1?.body.tool_choice, "auto");
    const sent = req2?.body.messages as Array<{ role: string; tool_call_id?: string; tool_calls?: unknown[] }>;
    assert.deepEqual(sent.map((m) => m.role), ["user", "assistant", "tool"]);
    assert.equal(sent[1]?.tool_calls?.length, 1);
    assert.equal(sent[2]?.tool_call_id, "call_1");
  });

  test("a scripted 429 surfaces as RateLimitError", async () => {
    standin.script({ status: 429, error: { message: "slow down", type: "requests", code: "rate_limit_exceeded" }, headers: { "retry-after": "0" } });
    await assert.rejects(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      (err: unknown) => err instanceof RateLimitError && err.status === 429 && err.message.includes("slow down") && err.code === "rate_limit_exceeded",
    );
  });

  test("with retries, the client retries a 429 and then succeeds", async () => {
    const retrying = new OpenAI({ apiKey: "sk-test", baseURL: standin.baseUrl, maxRetries: 2 });
    standin.script({ status: 429, headers: { "retry-after": "0" } }, { text: "second time lucky" });
    const res = await retrying.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    assert.equal(res.choices[0]?.message.content, "second time lucky");
    assert.equal(standin.requests.length, 2);
  });

  test("a reply slower than the client's timeout surfaces as APIConnectionTimeoutError", async () => {
    standin.script({ delayMs: 2_000, then: { text: "too late" } });
    await assert.rejects(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }, { timeout: 200 }),
      APIConnectionTimeoutError,
    );
  });

  test("a short delay still answers", async () => {
    standin.script({ delayMs: 50, then: { text: "late but fine" } });
    const res = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
    assert.equal(res.choices[0]?.message.content, "late but fine");
  });

  test("streaming is refused with a 400 error body", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.message.includes("stream"),
    );
  });

  test("models are listed; unknown paths are 404 in the error shape", async () => {
    const models = await client.models.list();
    assert.ok(models.data.length > 0 && models.data.every((m) => m.object === "model"));
    const unprefixed = await fetch(standin.baseUrl.replace(/\/v1$/, "/chat/completions"), { method: "POST", body: "{}" });
    assert.equal(unprefixed.status, 404);
    const body = (await unprefixed.json()) as { error: { message: string; type: string; param: null; code: null } };
    assert.equal(body.error.type, "invalid_request_error");
    assert.equal(body.error.param, null);
    await assert.rejects(client.models.retrieve("nope"), NotFoundError);
  });

  test("bodies over 8 MiB get 413", async () => {
    const res = await fetch(`${standin.baseUrl}/chat/completions`, { method: "POST", body: "x".repeat(8 * 1024 * 1024 + 1) });
    assert.equal(res.status, 413);
  });

  test("waitForRequests resolves when enough arrive, and rejects clearly when they do not", async () => {
    const waiting = standin.waitForRequests(2, 2_000);
    await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "one" }] });
    await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "two" }] });
    assert.equal((await waiting).length, 2);
    await assert.rejects(standin.waitForRequests(3, 50), /waited 50 ms for 3 request\(s\), received 2/);
  });
});

test("close() frees the port", async () => {
  const standin = await startModelStandin();
  const client = new OpenAI({ apiKey: "sk-test", baseURL: standin.baseUrl, maxRetries: 0 });
  await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }); // leaves a keep-alive connection
  await standin.close();
  const again = createServer();
  await new Promise<void>((resolve, reject) => {
    again.once("error", reject);
    again.listen(standin.port, "127.0.0.1", () => resolve());
  });
  await new Promise<void>((resolve) => again.close(() => resolve()));
  const reopened = await startModelStandin({ port: standin.port });
  assert.equal(reopened.baseUrl, standin.baseUrl);
  await reopened.close();
});
