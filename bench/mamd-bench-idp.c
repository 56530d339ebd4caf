/*
 * mamd-bench-idp: the loopback identity provider for `mamd-bench --plugin
 * office365`. It runs in a thread of its own with its own main context, so
 * it answers mamd's discovery and JWKS requests whatever the measuring
 * half is doing, and mints the tokens before the measurement starts.
 */
#include "config.h"

#include "mamd-bench.h"
#include "mamd-idp-server.h"

#define TOKEN_LIFETIME (4 * 3600)

struct _BenchIdp {
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  guint n_tokens;

  GMutex lock;
  GCond cond;
  gboolean ready;
  GError *error;
  char *authority;
  GPtrArray *tokens;
};

static gpointer
idp_thread (gpointer user_data)
{
  BenchIdp *idp = user_data;
  g_autoptr(MamdIdpServer) server = NULL;
  g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (idp->context);
  server = mamd_idp_server_new (0, &error);
  for (guint i = 0; server != NULL && i < idp->n_tokens; i++)
    {
      g_autofree char *oid = g_uuid_string_random ();
      g_autofree char *user = g_strdup_printf ("user%u", i);
      char *token = mamd_idp_server_mint (server, BENCH_TENANT, BENCH_CLIENT,
                                          BENCH_SCOPE, oid, user, TOKEN_LIFETIME);

      if (token == NULL)
        {
          g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "minting a token failed");
          break;
        }
      g_ptr_array_add (tokens, token);
    }

  g_mutex_lock (&idp->lock);
  if (error != NULL)
    idp->error = g_steal_pointer (&error);
  else
    {
      idp->authority = g_strdup (mamd_idp_server_get_authority (server));
      idp->tokens = g_steal_pointer (&tokens);
    }
  idp->ready = TRUE;
  g_cond_signal (&idp->cond);
  g_mutex_unlock (&idp->lock);

  if (idp->error == NULL)
    g_main_loop_run (idp->loop);
  g_clear_object (&server);
  g_main_context_pop_thread_default (idp->context);
  return NULL;
}

BenchIdp *
bench_idp_start (guint n_tokens, GError **error)
{
  BenchIdp *idp = g_new0 (BenchIdp, 1);

  g_mutex_init (&idp->lock);
  g_cond_init (&idp->cond);
  idp->n_tokens = n_tokens;
  idp->context = g_main_context_new ();
  idp->loop = g_main_loop_new (idp->context, FALSE);
  idp->thread = g_thread_new ("bench-idp", idp_thread, idp);

  g_mutex_lock (&idp->lock);
  while (!idp->ready)
    g_cond_wait (&idp->cond, &idp->lock);
  g_mutex_unlock (&idp->lock);
  if (idp->error != NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&idp->error),
                                  "cannot start the identity provider: ");
      bench_idp_stop (idp);
      return NULL;
    }
  return idp;
}

const char *
bench_idp_get_authority (BenchIdp *idp)
{
  return idp->authority;
}

const char *
bench_idp_get_token (BenchIdp *idp, guint64 n)
{
  return g_ptr_array_index (idp->tokens, n % idp->tokens->len);
}

static gboolean
quit_idle (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

void
bench_idp_stop (BenchIdp *idp)
{
  if (idp == NULL)
    return;
  g_main_context_invoke (idp->context, quit_idle, idp->loop);
  g_thread_join (idp->thread);
  g_main_loop_unref (idp->loop);
  g_main_context_unref (idp->context);
  g_mutex_clear (&idp->lock);
  g_cond_clear (&idp->cond);
  g_clear_error (&idp->error);
  g_clear_pointer (&idp->tokens, g_ptr_array_unref);
  g_free (idp->authority);
  g_free (idp);
}
