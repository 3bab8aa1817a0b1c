#include "dataplane/providers/adapter.h"
#include "dataplane/providers/provider.h"
#include "dataplane/proxy/stage.h"

/* Base URLs as the providers document them for their OpenAI-compatible APIs. */
static const gw_provider_t table[] = {
    {"openai", "https://api.openai.com/v1", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"groq", "https://api.groq.com/openai/v1", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"together-ai", "https://api.together.xyz/v1", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"mistral-ai", "https://api.mistral.ai/v1", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"deepseek", "https://api.deepseek.com/v1", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"fireworks-ai", "https://api.fireworks.ai/inference/v1", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"openrouter", "https://openrouter.ai/api/v1", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"perplexity-ai", "https://api.perplexity.ai", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"x-ai", "https://api.x.ai/v1", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"deepinfra", "https://api.deepinfra.com/v1/openai", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"cerebras", "https://api.cerebras.ai/v1", GW_AUTH_BEARER, GW_FORMAT_OPENAI},
    {"ollama", "http://127.0.0.1:11434/v1", GW_AUTH_NONE, GW_FORMAT_OPENAI},
    {"vllm", "http://127.0.0.1:8000/v1", GW_AUTH_NONE, GW_FORMAT_OPENAI},
};

const gw_provider_t *gw_provider_find(sl_str_t name)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (sl_str_ieq_c(name, table[i].name))
            return &table[i];
    return 0;
}

const gw_provider_t *gw_provider_table(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}

const gw_adapter_t *gw_adapter_for(gw_api_format_t format)
{
    switch (format) {
    case GW_FORMAT_OPENAI:
        return &gw_adapter_openai;
    }
    return &gw_adapter_openai;
}

int gw_provider_build(gw_proxy_t *px)
{
    px->adapter = gw_adapter_for(px->provider->format);
    return px->adapter->build_request(px);
}
