#include "common/str.h"
#include "common/err.h"

#include <openssl/crypto.h>

sl_str_t sl_str_trim(sl_str_t s)
{
    while (s.len > 0 && (s.base[0] == ' ' || s.base[0] == '\t')) {
        s.base++;
        s.len--;
    }
    while (s.len > 0 && (s.base[s.len - 1] == ' ' || s.base[s.len - 1] == '\t'))
        s.len--;
    return s;
}

int sl_str_to_u64(sl_str_t s, unsigned long long *out)
{
    unsigned long long v = 0;
    if (s.len == 0 || s.len > 20)
        return SL_EINVAL;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.base[i];
        if (c < '0' || c > '9')
            return SL_EINVAL;
        unsigned long long d = (unsigned long long)(c - '0');
        if (v > (~0ULL - d) / 10)
            return SL_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int sl_str_ct_eq(sl_str_t a, sl_str_t b)
{
    /* Length is not secret (keys have fixed formats); contents are. */
    if (a.len != b.len)
        return 0;
    return CRYPTO_memcmp(a.base, b.base, a.len) == 0;
}
