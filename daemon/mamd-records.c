#include "config.h"

#include "mamd-records.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/rand.h>

static const char *const state_names[] = {
  [MAMD_SESSION_STATE_ACTIVE] = "active",
  [MAMD_SESSION_STATE_ENROLLMENT_REQUIRED] = "enrollment-required",
  [MAMD_SESSION_STATE_ENROLLED] = "enrolled",
  [MAMD_SESSION_STATE_DECLINED] = "declined",
  [MAMD_SESSION_STATE_REVOKED] = "revoked",
};

const char *
mamd_session_state_to_string (MamdSessionState state)
{
  if ((guint) state >= G_N_ELEMENTS (state_names))
    return "unknown";
  return state_names[state];
}

gboolean
mamd_session_state_from_string (const char *text, MamdSessionState *out)
{
  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (state_names); i++) {
    if (g_str_equal (text, state_names[i])) {
      *out = (MamdSessionState) i;
      return TRUE;
    }
  }
  return FALSE;
}

MamdSessionRecord *
mamd_session_record_new (void)
{
  return g_new0 (MamdSessionRecord, 1);
}

MamdSessionRecord *
mamd_session_record_copy (const MamdSessionRecord *rec)
{
  MamdSessionRecord *copy = g_new (MamdSessionRecord, 1);

  *copy = *rec;
  copy->id = g_strdup (rec->id);
  copy->object_id = g_strdup (rec->object_id);
  copy->user_name = g_strdup (rec->user_name);
  copy->device_id = g_strdup (rec->device_id);
  return copy;
}

void
mamd_session_record_free (MamdSessionRecord *rec)
{
  if (rec == NULL)
    return;
  g_free (rec->id);
  g_free (rec->object_id);
  g_free (rec->user_name);
  g_free (rec->device_id);
  g_free (rec);
}

MamdUserRecord *
mamd_user_record_new (void)
{
  return g_new0 (MamdUserRecord, 1);
}

MamdUserRecord *
mamd_user_record_copy (const MamdUserRecord *rec)
{
  MamdUserRecord *copy = g_new (MamdUserRecord, 1);

  *copy = *rec;
  copy->object_id = g_strdup (rec->object_id);
  copy->user_name = g_strdup (rec->user_name);
  return copy;
}

void
mamd_user_record_free (MamdUserRecord *rec)
{
  if (rec == NULL)
    return;
  g_free (rec->object_id);
  g_free (rec->user_name);
  g_free (rec);
}

MamdRemovedServerRecord *
mamd_removed_server_record_new (void)
{
  return g_new0 (MamdRemovedServerRecord, 1);
}

MamdRemovedServerRecord *
mamd_removed_server_record_copy (const MamdRemovedServerRecord *rec)
{
  MamdRemovedServerRecord *copy = g_new (MamdRemovedServerRecord, 1);

  *copy = *rec;
  copy->device_id = g_strdup (rec->device_id);
  copy->object_id = g_strdup (rec->object_id);
  copy->reason = g_strdup (rec->reason);
  return copy;
}

void
mamd_removed_server_record_free (MamdRemovedServerRecord *rec)
{
  if (rec == NULL)
    return;
  g_free (rec->device_id);
  g_free (rec->object_id);
  g_free (rec->reason);
  g_free (rec);
}

MamdPolicyRecord *
mamd_policy_record_new (void)
{
  return g_new0 (MamdPolicyRecord, 1);
}

MamdPolicyRecord *
mamd_policy_record_copy (const MamdPolicyRecord *rec)
{
  MamdPolicyRecord *copy = g_new (MamdPolicyRecord, 1);

  *copy = *rec;
  copy->reason = g_strdup (rec->reason);
  return copy;
}

void
mamd_policy_record_free (MamdPolicyRecord *rec)
{
  if (rec == NULL)
    return;
  g_free (rec->reason);
  g_free (rec);
}

gboolean
mamd_policy_record_equal (const MamdPolicyRecord *a, const MamdPolicyRecord *b)
{
  return g_strcmp0 (a->server_id, b->server_id) == 0 && !a->mam_applies == !b->mam_applies &&
         !a->gate_open == !b->gate_open && g_strcmp0 (a->reason, b->reason) == 0;
}

MamdWipeRecord *
mamd_wipe_record_new (void)
{
  return g_new0 (MamdWipeRecord, 1);
}

MamdWipeRecord *
mamd_wipe_record_copy (const MamdWipeRecord *rec)
{
  MamdWipeRecord *copy = g_new (MamdWipeRecord, 1);

  *copy = *rec;
  copy->id = g_strdup (rec->id);
  copy->device_id = g_strdup (rec->device_id);
  copy->object_id = g_strdup (rec->object_id);
  copy->session_id = g_strdup (rec->session_id);
  copy->reason = g_strdup (rec->reason);
  return copy;
}

void
mamd_wipe_record_free (MamdWipeRecord *rec)
{
  if (rec == NULL)
    return;
  g_free (rec->id);
  g_free (rec->device_id);
  g_free (rec->object_id);
  g_free (rec->session_id);
  g_free (rec->reason);
  g_free (rec);
}

MamdEventRecord *
mamd_event_record_new (void)
{
  return g_new0 (MamdEventRecord, 1);
}

MamdEventRecord *
mamd_event_record_copy (const MamdEventRecord *rec)
{
  MamdEventRecord *copy = g_new (MamdEventRecord, 1);

  *copy = *rec;
  copy->type = g_strdup (rec->type);
  copy->server_id = g_strdup (rec->server_id);
  copy->session_id = g_strdup (rec->session_id);
  copy->decision_id = g_strdup (rec->decision_id);
  /* a record owns its detail (sunk when it was set): the copy adds a ref */
  copy->detail = rec->detail != NULL ? g_variant_ref (rec->detail) : NULL;
  return copy;
}

void
mamd_event_record_free (MamdEventRecord *rec)
{
  if (rec == NULL)
    return;
  g_free (rec->type);
  g_free (rec->server_id);
  g_free (rec->session_id);
  g_free (rec->decision_id);
  g_clear_pointer (&rec->detail, g_variant_unref);
  g_free (rec);
}

static const char hex[] = "0123456789abcdef";

/* RAND_bytes fails only when OpenSSL cannot seed its generator; then the
 * kernel's, which blocks until it is seeded. Never a non-cryptographic
 * generator: ids must stay unguessable, so without any source this waits
 * (and says so) rather than hand out a guessable id. */
static void
fill_random (guint8 *buf, gsize len)
{
  gboolean warned = FALSE;
  gsize done = 0;

  if (RAND_bytes (buf, (int) len) == 1)
    return;
  while (done < len) {
    gssize n = getrandom (buf + done, len - done, 0);

    if (n > 0) {
      done += (gsize) n;
    } else if (n < 0 && errno != EINTR) {
      if (!warned)
        g_warning ("no source of random bytes (getrandom: %s): waiting, ids must be "
                   "unguessable", g_strerror (errno));
      warned = TRUE;
      g_usleep (100 * 1000);
    }
  }
}

/* Writes 2 * @n_bytes hex characters of random bytes to @out; @n_bytes is
 * an id's size, far below the pool's. */
static void
random_hex (char *out, gsize n_bytes)
{
  /* one DRBG call per 4 KiB: RAND_bytes takes locks and costs more than
   * everything else about an id; per thread, so no lock here either */
  static _Thread_local guint8 pool[4096];
  static _Thread_local gsize pool_used = sizeof pool;

  if (sizeof pool - pool_used < n_bytes) {
    fill_random (pool, sizeof pool);
    pool_used = 0;
  }
  for (gsize i = 0; i < n_bytes; i++) {
    out[i * 2] = hex[pool[pool_used + i] >> 4];
    out[i * 2 + 1] = hex[pool[pool_used + i] & 0xf];
  }
  /* used bytes are not kept around */
  memset (pool + pool_used, 0, n_bytes);
  pool_used += n_bytes;
}

GVariant *
mamd_vardict_entry (const char *key, GVariant *value)
{
  return g_variant_new_dict_entry (g_variant_new_string (key), g_variant_new_variant (value));
}

char *
mamd_random_id (void)
{
  char *id = g_malloc (33);

  /* ids are unguessable so that knowing one proves having been told it */
  random_hex (id, 16);
  id[32] = '\0';
  return id;
}

char *
mamd_time_ordered_id (gint64 now)
{
  guint64 ms = (guint64) MAX (now, 0) / 1000;
  char *id = g_malloc (33);

  for (guint i = 0; i < 12; i++)
    id[i] = hex[(ms >> (44 - 4 * i)) & 0xf];
  random_hex (id + 12, 10);
  id[32] = '\0';
  return id;
}

gboolean
mamd_id_is_valid (const char *id)
{
  if (id == NULL || strlen (id) != 32)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++) {
    if (!g_ascii_isxdigit (*p) || g_ascii_isupper (*p))
      return FALSE;
  }
  return TRUE;
}
