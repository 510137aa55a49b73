/* test_notifier_sms.c — SMS encoding and segment counts (services/notifier/sms_size.h), the
 * figures a provider bills by. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sms_size.h"

/* text made of `count` copies of piece after prefix, into buf. */
static const char *repeat(char *buf, size_t size, const char *prefix, const char *piece,
                          size_t count, const char *suffix)
{
    size_t used = (size_t)snprintf(buf, size, "%s", prefix);
    for (size_t i = 0; i < count; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s", piece);
    (void)snprintf(buf + used, size - used, "%s", suffix);
    assert_true(strlen(buf) < size - 1);
    return buf;
}

static struct notifier_sms_size size_of(const char *text)
{
    struct notifier_sms_size s;
    char err[128] = "";
    if (notifier_sms_size(text, strlen(text), &s, err, sizeof(err)) != CF_OK)
        fail_msg("%s", err);
    return s;
}

static void assert_size(const char *text, enum notifier_sms_encoding enc, size_t units,
                        size_t segments)
{
    struct notifier_sms_size s = size_of(text);
    assert_int_equal(s.encoding, enc);
    assert_int_equal(s.units, units);
    assert_int_equal(s.segments, segments);
}

static void test_gsm7(void **state)
{
    (void)state;
    char buf[2048];
    assert_size("Your consultation is on 8 Dec at 09:15 (Chicago).", NOTIFIER_SMS_GSM7, 49, 1);
    assert_size("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./¡ÄÖÑÜ§¿äöñüà", NOTIFIER_SMS_GSM7,
                58, 1);
    /* The extension table takes two septets each. */
    assert_size("^{}\\[~]|€", NOTIFIER_SMS_GSM7, 18, 1);
    assert_size(repeat(buf, sizeof(buf), "", "a", 160, ""), NOTIFIER_SMS_GSM7, 160, 1);
    assert_size(repeat(buf, sizeof(buf), "", "a", 161, ""), NOTIFIER_SMS_GSM7, 161, 2);
    assert_size(repeat(buf, sizeof(buf), "", "a", 306, ""), NOTIFIER_SMS_GSM7, 306, 2);
    assert_size(repeat(buf, sizeof(buf), "", "a", 307, ""), NOTIFIER_SMS_GSM7, 307, 3);
    /* 159 + a two-septet euro sign is over one message. */
    assert_size(repeat(buf, sizeof(buf), "", "a", 159, "€"), NOTIFIER_SMS_GSM7, 161, 2);
    /* An escape pair is never split: 152 + "{" + 152 fits two parts of 153 by count, but the
     * brace moves to the second part and pushes its last letter into a third. */
    char tail[200];
    repeat(tail, sizeof(tail), "{", "a", 152, "");
    assert_size(repeat(buf, sizeof(buf), "", "a", 152, tail), NOTIFIER_SMS_GSM7, 306, 3);
}

static void test_ucs2(void **state)
{
    (void)state;
    char buf[4096];
    /* One character outside GSM-7 turns the whole text to UCS-2: ó, ğ, д, a backquote. */
    assert_size("¿Cómo está?", NOTIFIER_SMS_UCS2, 11, 1);
    assert_size("Görüşmeniz 8 Aralık'ta", NOTIFIER_SMS_UCS2, 22, 1);
    assert_size("Консультация", NOTIFIER_SMS_UCS2, 12, 1);
    assert_size("a`b", NOTIFIER_SMS_UCS2, 3, 1);
    assert_size(repeat(buf, sizeof(buf), "", "ğ", 70, ""), NOTIFIER_SMS_UCS2, 70, 1);
    assert_size(repeat(buf, sizeof(buf), "", "ğ", 71, ""), NOTIFIER_SMS_UCS2, 71, 2);
    /* Outside the BMP a character is a surrogate pair: two units. */
    assert_size(repeat(buf, sizeof(buf), "", "😀", 35, ""), NOTIFIER_SMS_UCS2, 70, 1);
    assert_size(repeat(buf, sizeof(buf), "", "😀", 36, ""), NOTIFIER_SMS_UCS2, 72, 2);
    /* A pair is never split: 66 + 2 + 66 units would fit two parts of 67 by count. */
    char tail[400];
    repeat(tail, sizeof(tail), "😀", "д", 66, "");
    assert_size(repeat(buf, sizeof(buf), "", "д", 66, tail), NOTIFIER_SMS_UCS2, 134, 3);
}

static void test_refused(void **state)
{
    (void)state;
    struct notifier_sms_size s;
    char err[128] = "";
    assert_int_equal(notifier_sms_size("", 0, &s, err, sizeof(err)), CF_EINVAL);
    assert_int_equal(notifier_sms_size("ok\xff", 3, &s, err, sizeof(err)), CF_EINVAL);
    assert_non_null(strstr(err, "byte 2"));
    assert_int_equal(notifier_sms_size("\xc3", 1, &s, err, sizeof(err)), CF_EINVAL);
    /* An overlong encoding of '/' is not UTF-8. */
    assert_int_equal(notifier_sms_size("\xc0\xaf", 2, &s, err, sizeof(err)), CF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gsm7),
        cmocka_unit_test(test_ucs2),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
