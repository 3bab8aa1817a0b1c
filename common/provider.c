/* The provider table: data shared by both planes (the gateway routes with
 * it; the control plane checks provider names against it). */
#include <stdio.h>
#include <string.h>

#include "common/provider.h"

/*
 * Base URLs as each service documents them (for OpenAI-compatible services,
 * the base of their OpenAI-compatible API). Keep the list sorted by format,
 * then by name; docs/providers.md lists the same entries.
 */
#define OAI(name, url, caps, label) {name, url, SL_AUTH_BEARER, SL_FORMAT_OPENAI, caps, label}
static const sl_provider_t table[] = {
    /* OpenAI and OpenAI-compatible: passthrough, model and auth rewriting only. */
    OAI("openai", "https://api.openai.com/v1", SL_CAP_OPENAI_ALL, "OpenAI"),
    OAI("ai21", "https://api.ai21.com/studio/v1", SL_CAP_CHAT_ONLY, "AI21 Labs"),
    OAI("anyscale", "https://api.endpoints.anyscale.com/v1", SL_CAP_OPENAI_LLM, "Anyscale Endpoints"),
    OAI("cerebras", "https://api.cerebras.ai/v1", SL_CAP_OPENAI_LLM, "Cerebras"),
    OAI("cloudflare-workers-ai",
        "https://api.cloudflare.com/client/v4/accounts/{workers-ai-account-id}/ai/v1",
        SL_CAP_CHAT | SL_CAP_EMBEDDINGS | SL_CAP_PASSTHROUGH, "Cloudflare Workers AI"),
    OAI("dashscope", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", SL_CAP_OPENAI_LLM,
        "Alibaba Cloud Model Studio (DashScope)"),
    OAI("databricks", "https://{databricks-workspace}.cloud.databricks.com/serving-endpoints",
        SL_CAP_CHAT | SL_CAP_COMPLETIONS | SL_CAP_EMBEDDINGS, "Databricks Model Serving"),
    OAI("deepinfra", "https://api.deepinfra.com/v1/openai", SL_CAP_OPENAI_LLM | SL_CAP_IMAGES,
        "DeepInfra"),
    OAI("deepseek", "https://api.deepseek.com/v1", SL_CAP_CHAT_ONLY | SL_CAP_COMPLETIONS, "DeepSeek"),
    OAI("featherless-ai", "https://api.featherless.ai/v1", SL_CAP_CHAT_ONLY | SL_CAP_COMPLETIONS,
        "Featherless AI"),
    OAI("fireworks-ai", "https://api.fireworks.ai/inference/v1", SL_CAP_OPENAI_LLM | SL_CAP_IMAGES,
        "Fireworks AI"),
    OAI("github-models", "https://models.github.ai/inference", SL_CAP_CHAT | SL_CAP_EMBEDDINGS,
        "GitHub Models"),
    OAI("groq", "https://api.groq.com/openai/v1", SL_CAP_CHAT_ONLY | SL_CAP_AUDIO, "Groq"),
    OAI("huggingface", "https://router.huggingface.co/v1", SL_CAP_CHAT_ONLY,
        "Hugging Face Inference Providers"),
    OAI("hyperbolic", "https://api.hyperbolic.xyz/v1", SL_CAP_CHAT_ONLY | SL_CAP_COMPLETIONS,
        "Hyperbolic"),
    OAI("inference-net", "https://api.inference.net/v1", SL_CAP_CHAT_ONLY, "Inference.net"),
    OAI("lambda", "https://api.lambda.ai/v1", SL_CAP_CHAT_ONLY | SL_CAP_COMPLETIONS,
        "Lambda Inference"),
    OAI("lepton", "https://{model}.lepton.run/api/v1", SL_CAP_CHAT | SL_CAP_COMPLETIONS,
        "Lepton AI"),
    {"lm-studio", "http://127.0.0.1:1234/v1", SL_AUTH_BEARER_OPTIONAL, SL_FORMAT_OPENAI,
     SL_CAP_OPENAI_LLM, "LM Studio (local)"},
    OAI("mistral-ai", "https://api.mistral.ai/v1", SL_CAP_OPENAI_LLM, "Mistral AI"),
    OAI("moonshot", "https://api.moonshot.ai/v1", SL_CAP_CHAT_ONLY, "Moonshot AI (Kimi)"),
    OAI("nebius", "https://api.studio.nebius.com/v1", SL_CAP_OPENAI_LLM | SL_CAP_IMAGES,
        "Nebius AI Studio"),
    OAI("novita", "https://api.novita.ai/openai/v1", SL_CAP_OPENAI_LLM, "Novita AI"),
    OAI("nscale", "https://inference.api.nscale.com/v1", SL_CAP_CHAT_ONLY | SL_CAP_IMAGES, "Nscale"),
    OAI("nvidia-nim", "https://integrate.api.nvidia.com/v1", SL_CAP_OPENAI_LLM, "NVIDIA NIM"),
    {"ollama", "http://127.0.0.1:11434/v1", SL_AUTH_BEARER_OPTIONAL, SL_FORMAT_OPENAI,
     SL_CAP_OPENAI_LLM, "Ollama (local)"},
    OAI("openrouter", "https://openrouter.ai/api/v1", SL_CAP_CHAT_ONLY | SL_CAP_COMPLETIONS,
        "OpenRouter"),
    OAI("perplexity-ai", "https://api.perplexity.ai", SL_CAP_CHAT | SL_CAP_PASSTHROUGH,
        "Perplexity"),
    OAI("predibase",
        "https://serving.app.predibase.com/{predibase-tenant-id}/deployments/v2/llms/"
        "{predibase-deployment}/v1",
        SL_CAP_CHAT | SL_CAP_COMPLETIONS, "Predibase"),
    OAI("sambanova", "https://api.sambanova.ai/v1", SL_CAP_CHAT_ONLY | SL_CAP_EMBEDDINGS,
        "SambaNova Cloud"),
    OAI("siliconflow", "https://api.siliconflow.com/v1", SL_CAP_OPENAI_LLM | SL_CAP_IMAGES,
        "SiliconFlow"),
    OAI("together-ai", "https://api.together.xyz/v1", SL_CAP_OPENAI_LLM | SL_CAP_IMAGES,
        "Together AI"),
    OAI("upstage", "https://api.upstage.ai/v1", SL_CAP_CHAT_ONLY | SL_CAP_EMBEDDINGS, "Upstage"),
    {"vllm", "http://127.0.0.1:8000/v1", SL_AUTH_BEARER_OPTIONAL, SL_FORMAT_OPENAI,
     SL_CAP_OPENAI_LLM, "vLLM (self-hosted)"},
    OAI("x-ai", "https://api.x.ai/v1", SL_CAP_CHAT_ONLY | SL_CAP_IMAGES, "xAI (Grok)"),
    OAI("zhipu", "https://open.bigmodel.cn/api/paas/v4", SL_CAP_CHAT | SL_CAP_EMBEDDINGS,
        "Zhipu AI (GLM)"),
    /* Embeddings services with OpenAI-shaped APIs. */
    OAI("jina", "https://api.jina.ai/v1", SL_CAP_EMBEDDINGS, "Jina AI embeddings"),
    OAI("voyage", "https://api.voyageai.com/v1", SL_CAP_EMBEDDINGS, "Voyage AI embeddings"),
    /* Their own formats. */
    {"azure-openai", "https://{azure-resource-name}.openai.azure.com/openai", SL_AUTH_API_KEY,
     SL_FORMAT_AZURE, SL_CAP_CHAT | SL_CAP_COMPLETIONS | SL_CAP_EMBEDDINGS | SL_CAP_IMAGES | SL_CAP_AUDIO,
     "Azure OpenAI"},
    {"anthropic", "https://api.anthropic.com/v1", SL_AUTH_X_API_KEY, SL_FORMAT_ANTHROPIC,
     SL_CAP_CHAT, "Anthropic"},
    {"google", "https://generativelanguage.googleapis.com/v1beta", SL_AUTH_GOOG_API_KEY,
     SL_FORMAT_GEMINI, SL_CAP_CHAT | SL_CAP_EMBEDDINGS, "Google Gemini API"},
    {"vertex-ai",
     "https://{vertex-region}-aiplatform.googleapis.com/v1/projects/{vertex-project-id}/"
     "locations/{vertex-region}/publishers/google",
     SL_AUTH_BEARER, SL_FORMAT_GEMINI, SL_CAP_CHAT | SL_CAP_EMBEDDINGS, "Google Vertex AI"},
    {"bedrock", "https://bedrock-runtime.{aws-region}.amazonaws.com", SL_AUTH_SIGV4,
     SL_FORMAT_BEDROCK, SL_CAP_CHAT | SL_CAP_EMBEDDINGS, "AWS Bedrock"},
    {"cohere", "https://api.cohere.com/v2", SL_AUTH_BEARER, SL_FORMAT_COHERE,
     SL_CAP_CHAT | SL_CAP_EMBEDDINGS, "Cohere"},
};
#undef OAI

static const char *const format_names[SL_FORMAT_COUNT] = {
    [SL_FORMAT_OPENAI] = "openai", [SL_FORMAT_AZURE] = "azure-openai",
    [SL_FORMAT_ANTHROPIC] = "anthropic", [SL_FORMAT_GEMINI] = "gemini",
    [SL_FORMAT_BEDROCK] = "bedrock-converse", [SL_FORMAT_COHERE] = "cohere-v2",
};

const char *sl_format_name(sl_api_format_t f)
{
    return (unsigned)f < SL_FORMAT_COUNT ? format_names[f] : "?";
}

const sl_provider_t *sl_provider_find(sl_str_t name)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (sl_str_ieq_c(name, table[i].name))
            return &table[i];
    return 0;
}

const sl_provider_t *sl_provider_table(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}

static const char *auth_name(sl_auth_style_t a)
{
    switch (a) {
    case SL_AUTH_BEARER: return "`Authorization: Bearer`";
    case SL_AUTH_BEARER_OPTIONAL: return "bearer when given";
    case SL_AUTH_NONE: return "none";
    case SL_AUTH_X_API_KEY: return "`x-api-key`";
    case SL_AUTH_API_KEY: return "`api-key` (Entra ID token: bearer)";
    case SL_AUTH_GOOG_API_KEY: return "`x-goog-api-key`";
    case SL_AUTH_QUERY_KEY: return "`?key=`";
    case SL_AUTH_SIGV4: return "AWS SigV4";
    }
    return "?";
}

void sl_provider_print_table(FILE *f)
{
    static const struct {
        unsigned cap;
        const char *name;
    } caps[] = {
        {SL_CAP_CHAT, "chat"},     {SL_CAP_COMPLETIONS, "completions"},
        {SL_CAP_EMBEDDINGS, "embeddings"}, {SL_CAP_IMAGES, "images"},
        {SL_CAP_AUDIO, "audio"},   {SL_CAP_MODELS, "models"},
        {SL_CAP_PASSTHROUGH, "other /v1 paths"},
    };
    fprintf(f, "| provider (`x-sluice-provider`) | service | format | base URL | auth | endpoints |\n");
    fprintf(f, "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < SL_ARRAY_SIZE(table); i++) {
        const sl_provider_t *p = &table[i];
        fprintf(f, "| `%s` | %s | %s | `%s` | %s | ", p->name, p->label, sl_format_name(p->format),
                p->base_url, auth_name(p->auth));
        const char *sep = "";
        for (size_t k = 0; k < SL_ARRAY_SIZE(caps); k++)
            if (p->endpoints & caps[k].cap) {
                fprintf(f, "%s%s", sep, caps[k].name);
                sep = ", ";
            }
        fprintf(f, " |\n");
    }
}
