/* registry.c — Confluent-compatible schema registry client (see registry.h). */
#include "registry.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A registry answer larger than this is refused: schemas are far smaller. */
#define MAX_RESPONSE (4 * 1024 * 1024)
/* Enough for every subject and schema of caseflow many times over; beyond it the oldest
 * entry is dropped so a stream of unknown ids cannot grow memory without bound. */
#define MAX_CACHED 512

struct by_id {
    int32_t id;
    struct cf_schema *schema;
};

struct by_subject {
    char *subject;
    char *text;
    int32_t id;
};

struct cf_registry {
    char *base_url;
    long timeout_ms;
    CURL *curl;
    struct curl_slist *headers;
    struct by_id ids[MAX_CACHED];
    size_t nids, next_id_slot;
    struct by_subject subjects[MAX_CACHED];
    size_t nsubjects, next_subject_slot;
};

struct response {
    char *data;
    size_t len;
    bool toobig;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct response *r = userdata;
    size_t n = size * nmemb;
    if (r->len + n > MAX_RESPONSE) {
        r->toobig = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    char *grown = realloc(r->data, r->len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + r->len, ptr, n);
    r->len += n;
    grown[r->len] = '\0';
    r->data = grown;
    return n;
}

cf_status cf_registry_new(const char *base_url, long timeout_ms, struct cf_registry **out,
                          char *errbuf, size_t errlen)
{
    struct cf_registry *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (r == NULL)
        return CF_ENOMEM;
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    r->base_url = strndup(base_url, n);
    r->timeout_ms = timeout_ms;
    r->curl = curl_easy_init();
    r->headers = curl_slist_append(NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
    if (r->headers != NULL)
        r->headers = curl_slist_append(r->headers, "Accept: application/vnd.schemaregistry.v1+json"
                                                   ", application/json");
    if (r->base_url == NULL || r->curl == NULL || r->headers == NULL) {
        cf_registry_free(r);
        return cf_fail(errbuf, errlen, CF_ENOMEM, "cannot set up the registry client");
    }
    *out = r;
    return CF_OK;
}

void cf_registry_free(struct cf_registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nids; i++)
        cf_schema_free(r->ids[i].schema);
    for (size_t i = 0; i < r->nsubjects; i++) {
        free(r->subjects[i].subject);
        free(r->subjects[i].text);
    }
    curl_slist_free_all(r->headers);
    if (r->curl != NULL)
        curl_easy_cleanup(r->curl);
    free(r->base_url);
    free(r);
}

/* Performs one request; body NULL means GET. On an HTTP answer (any status) *json holds the
 * parsed body (or NULL when it is not JSON) and *status the HTTP status. */
static cf_status request(struct cf_registry *r, const char *method, const char *path,
                         const json_t *body, long *status, json_t **json, char *errbuf,
                         size_t errlen)
{
    cf_status st = CF_OK;
    char url[2048];
    char *payload = NULL;
    struct response resp = {NULL, 0, false};
    CURLcode rc;

    *json = NULL;
    int n = snprintf(url, sizeof(url), "%s%s", r->base_url, path);
    if (n < 0 || (size_t)n >= sizeof(url))
        return cf_fail(errbuf, errlen, CF_EINVAL, "registry URL too long");
    if (body != NULL && (payload = json_dumps(body, JSON_COMPACT)) == NULL)
        return CF_ENOMEM;

    curl_easy_reset(r->curl);
    if ((rc = curl_easy_setopt(r->curl, CURLOPT_URL, url)) != CURLE_OK ||
        (rc = curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
        (rc = curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, r->timeout_ms)) != CURLE_OK ||
        (rc = curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms)) != CURLE_OK ||
        (rc = curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers)) != CURLE_OK ||
        (rc = curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_data)) != CURLE_OK ||
        (rc = curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &resp)) != CURLE_OK ||
        (rc = curl_easy_setopt(r->curl, CURLOPT_CUSTOMREQUEST, method)) != CURLE_OK ||
        (payload != NULL &&
         (rc = curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, payload)) != CURLE_OK)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "curl: %s", curl_easy_strerror(rc));
        goto out;
    }
    rc = curl_easy_perform(r->curl);
    if (resp.toobig) {
        st = cf_fail(errbuf, errlen, CF_ETOOBIG, "registry answer to %s %s is over %d bytes",
                     method, path, MAX_RESPONSE);
        goto out;
    }
    if (rc != CURLE_OK) {
        st = cf_fail(errbuf, errlen, rc == CURLE_OPERATION_TIMEDOUT ? CF_ETIMEOUT : CF_EIO,
                     "registry %s %s: %s", method, r->base_url, curl_easy_strerror(rc));
        goto out;
    }
    (void)curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);
    if (resp.data != NULL)
        *json = json_loadb(resp.data, resp.len, 0, NULL);
out:
    free(resp.data);
    free(payload);
    return st;
}

/* Turns a non-2xx answer into a status and a message with the registry's own words. */
static cf_status answer_error(long status, const json_t *json, const char *what, char *errbuf,
                              size_t errlen)
{
    const char *msg = json_string_value(json_object_get(json, "message"));
    long long code = json_integer_value(json_object_get(json, "error_code"));
    cf_status st = status == 404 ? CF_ENOTFOUND
                   : status == 409 || status == 422 ? CF_ESCHEMA
                   : status >= 500 ? CF_EIO
                                   : CF_EINVAL;
    return cf_fail(errbuf, errlen, st, "%s: registry answered HTTP %ld (error_code %lld): %.300s",
                   what, status, code, msg != NULL ? msg : "no message");
}

static cf_status subject_path(struct cf_registry *r, const char *prefix, const char *subject,
                              const char *suffix, char *out, size_t outlen)
{
    char *escaped = curl_easy_escape(r->curl, subject, 0);
    if (escaped == NULL)
        return CF_ENOMEM;
    int n = snprintf(out, outlen, "%s%s%s", prefix, escaped, suffix);
    curl_free(escaped);
    return n < 0 || (size_t)n >= outlen ? CF_EINVAL : CF_OK;
}

static json_t *schema_body(const char *text)
{
    return json_pack("{s:s, s:s}", "schema", text, "schemaType", "AVRO");
}

cf_status cf_registry_register(struct cf_registry *r, const char *subject, const char *text,
                               int32_t *id, char *errbuf, size_t errlen)
{
    char path[1024];
    long status = 0;
    json_t *body = NULL, *answer = NULL;
    cf_status st;

    for (size_t i = 0; i < r->nsubjects; i++)
        if (strcmp(r->subjects[i].subject, subject) == 0 && strcmp(r->subjects[i].text, text) == 0) {
            *id = r->subjects[i].id;
            return CF_OK;
        }
    if ((st = subject_path(r, "/subjects/", subject, "/versions", path, sizeof(path))) != CF_OK)
        return cf_fail(errbuf, errlen, st, "subject name too long");
    if ((body = schema_body(text)) == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "schema text is not UTF-8");
    st = request(r, "POST", path, body, &status, &answer, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (status != 200) {
        st = answer_error(status, answer, subject, errbuf, errlen);
        goto out;
    }
    json_int_t got = json_integer_value(json_object_get(answer, "id"));
    if (got <= 0 || got > INT32_MAX) {
        st = cf_fail(errbuf, errlen, CF_EIO, "%s: registry answer has no schema id", subject);
        goto out;
    }
    *id = (int32_t)got;
    /* Remember the answer; without memory for the copies the next call just asks again. */
    char *subject_copy = strdup(subject), *text_copy = strdup(text);
    if (subject_copy != NULL && text_copy != NULL) {
        size_t at = r->nsubjects < MAX_CACHED ? r->nsubjects++
                                              : r->next_subject_slot++ % MAX_CACHED;
        free(r->subjects[at].subject);
        free(r->subjects[at].text);
        r->subjects[at] = (struct by_subject){subject_copy, text_copy, *id};
    } else {
        free(subject_copy);
        free(text_copy);
    }
out:
    json_decref(answer);
    json_decref(body);
    return st;
}

cf_status cf_registry_schema(struct cf_registry *r, int32_t id, const struct cf_schema **out,
                             char *errbuf, size_t errlen)
{
    char path[64];
    long status = 0;
    json_t *answer = NULL;
    struct cf_schema *schema = NULL;
    cf_status st;

    for (size_t i = 0; i < r->nids; i++)
        if (r->ids[i].id == id) {
            *out = r->ids[i].schema;
            return CF_OK;
        }
    (void)snprintf(path, sizeof(path), "/schemas/ids/%ld", (long)id);
    st = request(r, "GET", path, NULL, &status, &answer, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (status != 200) {
        char what[48];
        (void)snprintf(what, sizeof(what), "schema id %ld", (long)id);
        st = answer_error(status, answer, what, errbuf, errlen);
        goto out;
    }
    const char *type = json_string_value(json_object_get(answer, "schemaType"));
    const char *text = json_string_value(json_object_get(answer, "schema"));
    if (type != NULL && strcmp(type, "AVRO") != 0) {
        st = cf_fail(errbuf, errlen, CF_ESCHEMA, "schema id %ld is %.20s, not AVRO", (long)id,
                     type);
        goto out;
    }
    if (text == NULL) {
        st = cf_fail(errbuf, errlen, CF_EIO, "schema id %ld: answer has no schema", (long)id);
        goto out;
    }
    if ((st = cf_schema_parse(text, strlen(text), &schema, errbuf, errlen)) != CF_OK)
        goto out;
    struct by_id *slot =
        &r->ids[r->nids < MAX_CACHED ? r->nids++ : r->next_id_slot++ % MAX_CACHED];
    cf_schema_free(slot->schema);
    slot->id = id;
    slot->schema = schema;
    *out = schema;
out:
    json_decref(answer);
    return st;
}

cf_status cf_registry_set_compatibility(struct cf_registry *r, const char *subject,
                                        const char *level, char *errbuf, size_t errlen)
{
    char path[1024];
    long status = 0;
    json_t *answer = NULL, *body = json_pack("{s:s}", "compatibility", level);
    cf_status st = subject_path(r, "/config/", subject, "", path, sizeof(path));
    if (body == NULL || st != CF_OK) {
        json_decref(body);
        return cf_fail(errbuf, errlen, CF_EINVAL, "bad subject or level");
    }
    st = request(r, "PUT", path, body, &status, &answer, errbuf, errlen);
    if (st == CF_OK && status != 200)
        st = answer_error(status, answer, subject, errbuf, errlen);
    json_decref(answer);
    json_decref(body);
    return st;
}

cf_status cf_registry_check_compatibility(struct cf_registry *r, const char *subject,
                                          const char *text, bool *compatible, char *errbuf,
                                          size_t errlen)
{
    char path[1024];
    long status = 0;
    json_t *answer = NULL, *body = schema_body(text);
    cf_status st = subject_path(r, "/compatibility/subjects/", subject, "/versions/latest", path,
                                sizeof(path));
    if (body == NULL || st != CF_OK) {
        json_decref(body);
        return cf_fail(errbuf, errlen, CF_EINVAL, "bad subject or schema text");
    }
    st = request(r, "POST", path, body, &status, &answer, errbuf, errlen);
    if (st == CF_OK && status != 200)
        st = answer_error(status, answer, subject, errbuf, errlen);
    else if (st == CF_OK) {
        json_t *flag = json_object_get(answer, "is_compatible");
        if (!json_is_boolean(flag))
            st = cf_fail(errbuf, errlen, CF_EIO, "%s: answer has no is_compatible", subject);
        else
            *compatible = json_is_true(flag);
    }
    json_decref(answer);
    json_decref(body);
    return st;
}
