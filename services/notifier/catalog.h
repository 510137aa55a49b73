/* catalog.h — the notifier's template catalog: every template the notifier renders and the
 * variables each may name (render.h's spec table). The template files under
 * CASEFLOW_NOTIFIER_TEMPLATE_DIR must match it; the notifier fills exactly these variables. */
#ifndef NOTIFIER_CATALOG_H
#define NOTIFIER_CATALOG_H

#include <stddef.h>

#include "render.h"

/* The catalog; *n is set to its length. Static, immutable data. */
const struct notifier_template_spec *notifier_catalog(size_t *n);

#endif
