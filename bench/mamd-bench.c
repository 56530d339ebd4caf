/*
 * mamd-bench: how fast mamd serves SignIn compared with a trivial echo
 * service on the same bus, and how much memory N live sessions take.
 *
 *   mamd-bench [--in-flight N] [--seconds D] [--sessions N] [--json] [--smoke]
 *              [--plugin test|office365] [--tokens N]
 *
 * Goals: SignIn calls/s >= 70% of echo calls/s with the test plugin, >= 60%
 * with office365 and real RS256 access tokens (each SignIn verifies a
 * signature); < 100 MiB VmRSS with 100,000 live sessions. A disk baseline
 * (write + fdatasync beside the state) comes first: every acknowledged
 * SignIn waits for one such sync (per batch).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "mamd-bench.h"

#define RATIO_GOAL 0.70
#define RATIO_GOAL_OFFICE365 0.60
#define RSS_GOAL_MIB 100.0

typedef struct Phase Phase;
typedef void (*IssueFunc) (Phase *phase, guint64 n, GAsyncReadyCallback callback,
                           gpointer user_data);

struct Phase {
  GDBusConnection *bus;
  IssueFunc issue;
  GMainLoop *loop;
  guint in_flight_target;
  guint in_flight;
  gint64 start;
  gint64 deadline;    /* monotonic µs; 0: no time limit */
  guint64 limit;      /* calls to issue; 0: no count limit */
  guint64 issued;
  guint64 counted;    /* completed before the deadline */
  GArray *latencies;  /* gint64 µs of counted calls */
  GError *error;
};

typedef struct {
  Phase *phase;
  gint64 start;
} Call;

static guint64 next_identity; /* object and device ids are never reused */
/* --plugin office365: the provider whose tokens SignIn carries */
static BenchIdp *bench_idp;

static char *
make_guid (guint64 n)
{
  return g_strdup_printf ("%08x-%04x-4%03x-8%03x-%012" G_GINT64_MODIFIER "x",
                          (guint) (n >> 32), (guint) ((n >> 16) & 0xffff),
                          (guint) (n & 0xfff), (guint) ((n >> 12) & 0xfff),
                          (guint64) n);
}

static const char *
bench_method (void)
{
  return bench_idp != NULL ? "office365" : "test";
}

static void
build_request (guint64 n, GVariant **credential, GVariant **device)
{
  g_auto(GVariantBuilder) cred = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto(GVariantBuilder) dev = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree char *object_id = make_guid (n);
  g_autofree char *user = g_strdup_printf ("user%" G_GUINT64_FORMAT, n);
  g_autofree char *device_id = g_strdup_printf ("bench-device-%" G_GUINT64_FORMAT, n);

  if (bench_idp != NULL)
    g_variant_builder_add (&cred, "{sv}", "access-token",
                           g_variant_new_string (bench_idp_get_token (bench_idp, n)));
  else
    {
      g_variant_builder_add (&cred, "{sv}", "object-id", g_variant_new_string (object_id));
      g_variant_builder_add (&cred, "{sv}", "tenant-id", g_variant_new_string (BENCH_TENANT));
      g_variant_builder_add (&cred, "{sv}", "user-name", g_variant_new_string (user));
    }
  g_variant_builder_add (&dev, "{sv}", "platform", g_variant_new_string ("ios"));
  g_variant_builder_add (&dev, "{sv}", "device-id", g_variant_new_string (device_id));
  *credential = g_variant_builder_end (&cred);
  *device = g_variant_builder_end (&dev);
}

static void
issue_echo (Phase *phase, guint64 n, GAsyncReadyCallback callback, gpointer user_data)
{
  g_auto(GVariantBuilder) request = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  GVariant *credential, *device;
  GVariantIter iter;
  const char *key;
  GVariant *value;

  /* the same payload as SignIn's, in one dict */
  build_request (n, &credential, &device);
  g_variant_builder_add (&request, "{sv}", "server", g_variant_new_string (BENCH_SERVER));
  g_variant_builder_add (&request, "{sv}", "method", g_variant_new_string (bench_method ()));
  g_variant_iter_init (&iter, credential);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_variant_builder_add (&request, "{sv}", key, value);
      g_variant_unref (value);
    }
  g_variant_iter_init (&iter, device);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_variant_builder_add (&request, "{sv}", key, value);
      g_variant_unref (value);
    }
  g_variant_unref (g_variant_ref_sink (credential));
  g_variant_unref (g_variant_ref_sink (device));
  g_dbus_connection_call (phase->bus, BENCH_ECHO_NAME, BENCH_ECHO_PATH, BENCH_ECHO_IFACE, "Echo",
                          g_variant_new ("(@a{sv})", g_variant_builder_end (&request)),
                          G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                          callback, user_data);
}

static void
issue_sign_in (Phase *phase, guint64 n, GAsyncReadyCallback callback, gpointer user_data)
{
  GVariant *credential, *device;

  build_request (n, &credential, &device);
  g_dbus_connection_call (phase->bus, "org.mamd.Mamd1", "/org/mamd/Mamd1",
                          "org.mamd.Mamd1.Manager", "SignIn",
                          g_variant_new ("(ss@a{sv}@a{sv})", BENCH_SERVER, bench_method (),
                                         credential, device),
                          G_VARIANT_TYPE ("(oa{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                          callback, user_data);
}

static void issue_next (Phase *phase);

static gboolean
phase_may_issue (Phase *phase)
{
  if (phase->error != NULL)
    return FALSE;
  if (phase->limit != 0 && phase->issued >= phase->limit)
    return FALSE;
  return phase->deadline == 0 || g_get_monotonic_time () < phase->deadline;
}

static void
on_call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  Phase *phase = call->phase;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  gint64 now = g_get_monotonic_time ();

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  phase->in_flight--;
  if (reply == NULL && phase->error == NULL)
    phase->error = g_steal_pointer (&error);
  else if (reply != NULL && (phase->deadline == 0 || now <= phase->deadline))
    {
      gint64 latency = now - call->start;
      phase->counted++;
      g_array_append_val (phase->latencies, latency);
    }
  g_free (call);

  while (phase->in_flight < phase->in_flight_target && phase_may_issue (phase))
    issue_next (phase);
  if (phase->in_flight == 0)
    g_main_loop_quit (phase->loop);
}

static void
issue_next (Phase *phase)
{
  Call *call = g_new0 (Call, 1);

  call->phase = phase;
  call->start = g_get_monotonic_time ();
  phase->in_flight++;
  phase->issued++;
  phase->issue (phase, next_identity++, on_call_done, call);
}

static gboolean
run_phase (Phase *phase, GError **error)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  phase->loop = loop;
  phase->latencies = g_array_new (FALSE, FALSE, sizeof (gint64));
  phase->start = g_get_monotonic_time ();
  if (phase->deadline != 0)
    phase->deadline += phase->start;
  while (phase->in_flight < phase->in_flight_target && phase_may_issue (phase))
    issue_next (phase);
  if (phase->in_flight > 0)
    g_main_loop_run (loop);
  if (phase->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&phase->error));
      return FALSE;
    }
  return TRUE;
}

static gint
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

typedef struct {
  guint64 calls;
  double calls_per_second;
  double p50_ms;
  double p99_ms;
  /* CPU time per issued call, µs: on 2 cores the ratio follows their sum */
  double client_cpu_us;
  double bus_cpu_us;
  double service_cpu_us; /* the echo service, or mamd */
} Rate;

/* CPU time of every thread of @pid so far, ns (0 when it is gone). */
static guint64
process_cpu_ns (GPid pid)
{
  g_autofree char *tasks = g_strdup_printf ("/proc/%d/task", (int) pid);
  g_autoptr(GDir) dir = g_dir_open (tasks, 0, NULL);
  const char *tid;
  guint64 total = 0;

  while (dir != NULL && (tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (tasks, tid, "schedstat", NULL);
      g_autofree char *text = NULL;

      /* first field: time spent on the CPU, ns */
      if (g_file_get_contents (path, &text, NULL, NULL))
        total += g_ascii_strtoull (text, NULL, 10);
    }
  return total;
}

/* @l: latencies, µs (sorted here) */
static Rate
latency_rate (GArray *l, guint64 calls, double seconds)
{
  Rate rate = { calls, calls / seconds, 0, 0 };

  if (l->len > 0)
    {
      g_array_sort (l, compare_gint64);
      rate.p50_ms = g_array_index (l, gint64, (l->len - 1) / 2) / 1000.0;
      rate.p99_ms = g_array_index (l, gint64, (guint) ((l->len - 1) * 0.99)) / 1000.0;
    }
  return rate;
}

static Rate
phase_rate (Phase *phase, double seconds)
{
  return latency_rate (phase->latencies, phase->counted, seconds);
}

/* The disk baseline: 4 KiB writes, each followed by fdatasync, in @dir (on
 * the state directory's file system) for @seconds. mamd makes each batch
 * of acknowledged changes durable with one such sync, so its latency is
 * part of every SignIn's. */
static gboolean
measure_disk_sync (const char *dir, double seconds, Rate *out, GError **error)
{
  g_autofree char *path = g_build_filename (dir, "sync-probe", NULL);
  g_autoptr(GArray) latencies = g_array_new (FALSE, FALSE, sizeof (gint64));
  char block[4096];
  gint64 start, deadline, now, latency;
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  if (fd < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot create %s: %s",
                   path, g_strerror (errno));
      return FALSE;
    }
  memset (block, 'x', sizeof block);
  start = now = g_get_monotonic_time ();
  deadline = start + (gint64) (seconds * G_USEC_PER_SEC);
  while (now < deadline)
    {
      const gint64 before = now;
      /* a small ring, like a WAL that is overwritten after each checkpoint */
      off_t offset = (off_t) (latencies->len % 64) * sizeof block;

      if (pwrite (fd, block, sizeof block, offset) != sizeof block || fdatasync (fd) != 0)
        {
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                       "cannot write and sync %s: %s", path, g_strerror (errno));
          close (fd);
          unlink (path);
          return FALSE;
        }
      now = g_get_monotonic_time ();
      latency = now - before;
      g_array_append_val (latencies, latency);
    }
  close (fd);
  unlink (path);
  *out = latency_rate (latencies, latencies->len, (now - start) / (double) G_USEC_PER_SEC);
  return TRUE;
}

static gboolean
measure (BenchEnv *env, IssueFunc issue, GPid service, guint in_flight, guint seconds,
         Rate *out, GError **error)
{
  Phase phase = { env->bus, issue, NULL, in_flight, 0, 0, (gint64) seconds * G_USEC_PER_SEC };
  const GPid pids[] = { getpid (), env->bus_pid, service };
  guint64 before[G_N_ELEMENTS (pids)];
  gboolean ok;

  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    before[i] = process_cpu_ns (pids[i]);
  ok = run_phase (&phase, error);
  if (ok)
    {
      double *cpu[] = { &out->client_cpu_us, &out->bus_cpu_us, &out->service_cpu_us };

      *out = phase_rate (&phase, seconds);
      /* every issued call has completed when run_phase returns */
      for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
        *cpu[i] = (process_cpu_ns (pids[i]) - before[i]) / 1000.0 / MAX (phase.issued, 1);
    }
  g_array_unref (phase.latencies);
  return ok;
}

static gboolean
get_live_sessions (BenchEnv *env, guint *out, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) status = NULL;

  reply = g_dbus_connection_call_sync (env->bus, "org.mamd.Mamd1", "/org/mamd/Mamd1",
                                       "org.mamd.Mamd1.Manager", "GetStatus", NULL,
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, error);
  if (reply == NULL)
    return FALSE;
  status = g_variant_get_child_value (reply, 0);
  if (!g_variant_lookup (status, "sessions", "u", out))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                           "GetStatus has no \"sessions\" count");
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_vmrss_kib (GPid pid, guint64 *out, GError **error)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents (path, &contents, NULL, error))
    return FALSE;
  line = strstr (contents, "\nVmRSS:");
  if (line == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "no VmRSS in %s", path);
      return FALSE;
    }
  *out = g_ascii_strtoull (line + strlen ("\nVmRSS:"), NULL, 10);
  return TRUE;
}

typedef struct {
  const char *plugin;
  guint tokens;       /* distinct access tokens (office365), 0 otherwise */
  double ratio_goal;
  guint in_flight;
  guint seconds;
  guint sessions;
  Rate disk;
  Rate echo;
  Rate sign_in;
  double ratio;
  GArray *ratios;     /* double: SignIn/echo of every round, in order */
  guint live_sessions;
  double fill_seconds;
  guint64 rss_kib;
} Results;

static void
add_rate (JsonBuilder *b, const char *name, const Rate *rate)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "calls");
  json_builder_add_int_value (b, (gint64) rate->calls);
  json_builder_set_member_name (b, "calls-per-second");
  json_builder_add_double_value (b, rate->calls_per_second);
  json_builder_set_member_name (b, "p50-ms");
  json_builder_add_double_value (b, rate->p50_ms);
  json_builder_set_member_name (b, "p99-ms");
  json_builder_add_double_value (b, rate->p99_ms);
  json_builder_set_member_name (b, "cpu-us-per-call");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "client");
  json_builder_add_double_value (b, rate->client_cpu_us);
  json_builder_set_member_name (b, "dbus-daemon");
  json_builder_add_double_value (b, rate->bus_cpu_us);
  json_builder_set_member_name (b, "service");
  json_builder_add_double_value (b, rate->service_cpu_us);
  json_builder_end_object (b);
  json_builder_end_object (b);
}

static void
print_json (const Results *r)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "plugin");
  json_builder_add_string_value (b, r->plugin);
  json_builder_set_member_name (b, "tokens");
  json_builder_add_int_value (b, r->tokens);
  json_builder_set_member_name (b, "in-flight");
  json_builder_add_int_value (b, r->in_flight);
  json_builder_set_member_name (b, "seconds");
  json_builder_add_int_value (b, r->seconds);
  json_builder_set_member_name (b, "disk-sync");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "syncs-per-second");
  json_builder_add_double_value (b, r->disk.calls_per_second);
  json_builder_set_member_name (b, "p50-ms");
  json_builder_add_double_value (b, r->disk.p50_ms);
  json_builder_set_member_name (b, "p99-ms");
  json_builder_add_double_value (b, r->disk.p99_ms);
  json_builder_end_object (b);
  add_rate (b, "echo", &r->echo);
  add_rate (b, "sign-in", &r->sign_in);
  json_builder_set_member_name (b, "ratio");
  json_builder_add_double_value (b, r->ratio);
  json_builder_set_member_name (b, "round-ratios");
  json_builder_begin_array (b);
  for (guint i = 0; i < r->ratios->len; i++)
    json_builder_add_double_value (b, g_array_index (r->ratios, double, i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "ratio-goal");
  json_builder_add_double_value (b, r->ratio_goal);
  json_builder_set_member_name (b, "sessions");
  json_builder_add_int_value (b, r->live_sessions);
  json_builder_set_member_name (b, "fill-seconds");
  json_builder_add_double_value (b, r->fill_seconds);
  json_builder_set_member_name (b, "vmrss-kib");
  json_builder_add_int_value (b, (gint64) r->rss_kib);
  json_builder_set_member_name (b, "vmrss-goal-mib");
  json_builder_add_double_value (b, RSS_GOAL_MIB);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

static void
print_text (const Results *r)
{
  double rss_mib = r->rss_kib / 1024.0;

  printf ("mamd-bench: %u calls in flight, %u s per phase, plugin %s", r->in_flight, r->seconds,
          r->plugin);
  if (r->tokens > 0)
    printf (" (%u distinct RS256 access tokens from a loopback IdP)", r->tokens);
  printf ("\n");
  printf ("disk    %10.1f syncs/s   p50 %7.3f ms   p99 %7.3f ms   (4 KiB write + fdatasync "
          "beside the state)\n", r->disk.calls_per_second, r->disk.p50_ms, r->disk.p99_ms);
  printf ("echo    %10.1f calls/s   p50 %7.3f ms   p99 %7.3f ms   (%" G_GUINT64_FORMAT
          " calls)\n", r->echo.calls_per_second, r->echo.p50_ms, r->echo.p99_ms, r->echo.calls);
  printf ("SignIn  %10.1f calls/s   p50 %7.3f ms   p99 %7.3f ms   (%" G_GUINT64_FORMAT
          " calls)\n", r->sign_in.calls_per_second, r->sign_in.p50_ms, r->sign_in.p99_ms,
          r->sign_in.calls);
  printf ("CPU per call: echo   client %5.0f us, dbus-daemon %5.0f us, echo service %5.0f us\n",
          r->echo.client_cpu_us, r->echo.bus_cpu_us, r->echo.service_cpu_us);
  printf ("              SignIn client %5.0f us, dbus-daemon %5.0f us, mamd         %5.0f us\n",
          r->sign_in.client_cpu_us, r->sign_in.bus_cpu_us, r->sign_in.service_cpu_us);
  if (r->ratios->len > 1)
    {
      printf ("SignIn/echo per round (echo then SignIn, each %u s):", r->seconds);
      for (guint i = 0; i < r->ratios->len; i++)
        printf (" %.1f%%", g_array_index (r->ratios, double, i) * 100);
      printf ("; the median round is shown above\n");
    }
  printf ("SignIn/echo %.1f%% (goal >= %.0f%%): %s\n", r->ratio * 100, r->ratio_goal * 100,
          r->ratio >= r->ratio_goal ? "met" : "MISSED");
  printf ("%u live sessions (filled in %.1f s): mamd VmRSS %.1f MiB (goal < %.0f MiB): %s\n",
          r->live_sessions, r->fill_seconds, rss_mib, RSS_GOAL_MIB,
          rss_mib < RSS_GOAL_MIB ? "met" : "MISSED");
}

static gint
compare_doubles (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

/* Echo then SignIn, @rounds times; the round with the median SignIn/echo
 * ratio goes into @r, every round's ratio into r->ratios. */
static gboolean
measure_rounds (BenchEnv *env, guint in_flight, guint seconds, guint rounds, Results *r,
                GError **error)
{
  g_autoptr(GArray) echo = g_array_new (FALSE, TRUE, sizeof (Rate));
  g_autoptr(GArray) sign_in = g_array_new (FALSE, TRUE, sizeof (Rate));
  g_autoptr(GArray) sorted = NULL;
  guint median = 0;

  g_array_set_size (echo, rounds);
  g_array_set_size (sign_in, rounds);
  for (guint i = 0; i < rounds; i++)
    {
      Rate *e = &g_array_index (echo, Rate, i);
      Rate *s = &g_array_index (sign_in, Rate, i);
      double ratio;

      if (!measure (env, issue_echo, env->echo_pid, in_flight, seconds, e, error)
          || !measure (env, issue_sign_in, env->mamd_pid, in_flight, seconds, s, error))
        return FALSE;
      ratio = e->calls_per_second > 0 ? s->calls_per_second / e->calls_per_second : 0;
      g_array_append_val (r->ratios, ratio);
    }
  sorted = g_array_copy (r->ratios);
  g_array_sort (sorted, compare_doubles);
  while (g_array_index (r->ratios, double, median) != g_array_index (sorted, double, rounds / 2))
    median++;
  r->echo = g_array_index (echo, Rate, median);
  r->sign_in = g_array_index (sign_in, Rate, median);
  r->ratio = g_array_index (r->ratios, double, median);
  return TRUE;
}

static gboolean
fill_sessions (BenchEnv *env, guint in_flight, guint target, Results *r, GError **error)
{
  guint live = 0;
  gint64 start = g_get_monotonic_time ();

  if (!get_live_sessions (env, &live, error))
    return FALSE;
  if (live < target)
    {
      Phase phase = { env->bus, issue_sign_in, NULL, in_flight, 0, 0, 0, target - live };
      gboolean ok = run_phase (&phase, error);

      g_array_unref (phase.latencies);
      if (!ok)
        return FALSE;
    }
  r->fill_seconds = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
  if (!get_live_sessions (env, &r->live_sessions, error))
    return FALSE;
  return read_vmrss_kib (env->mamd_pid, &r->rss_kib, error);
}

int
main (int argc, char **argv)
{
  int in_flight = 8, seconds = 5, sessions = 100000, rounds = 1;
  gboolean json = FALSE, smoke = FALSE;
  int n_tokens = 1000;
  /* GOption replaces a string without freeing it: defaults come after parsing */
  g_autofree char *plugin = NULL;
  g_autoptr(BenchIdp) idp = NULL;
  g_autofree char *mamd_path = NULL;
  g_autofree char *plugin_dir = NULL;
  g_autofree char *echo_address = NULL;
  const GOptionEntry entries[] = {
    { "in-flight", 0, 0, G_OPTION_ARG_INT, &in_flight, "Calls in flight (default 8)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "Seconds per phase (default 5)", "D" },
    { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds,
      "Measure echo then SignIn N times and report the median round (default 1): "
      "a host whose load drifts biases one long pair of phases", "N" },
    { "sessions", 0, 0, G_OPTION_ARG_INT, &sessions,
      "Live sessions for the memory measurement (default 100000)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "smoke", 0, 0, G_OPTION_ARG_NONE, &smoke,
      "Quick check that everything runs: 1 s per phase, 100 sessions", NULL },
    { "mamd", 0, 0, G_OPTION_ARG_FILENAME, &mamd_path, "The mamd binary", "PATH" },
    { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &plugin_dir,
      "Directory with the plugin (default: the build's, for --plugin)", "DIR" },
    { "plugin", 0, 0, G_OPTION_ARG_STRING, &plugin,
      "test (default: trusts its credential) or office365 (real RS256 tokens)", "NAME" },
    { "tokens", 0, 0, G_OPTION_ARG_INT, &n_tokens,
      "office365: distinct access tokens minted up front (default 1000)", "N" },
    { "echo-service", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &echo_address, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- mamd load generator");
  g_autoptr(GError) error = NULL;
  g_autoptr(BenchEnv) env = NULL;
  BenchEnvOptions options;
  Results r = { 0 };
  g_autoptr(GArray) ratios = g_array_new (FALSE, FALSE, sizeof (double));

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context,
      "Starts a private bus, mamd (advanced licence; the test plugin, or office365\n"
      "with a loopback identity provider and real tokens) and an echo\n"
      "service, then measures the disk (4 KiB write + fdatasync in $TMPDIR, where\n"
      "the state lives), echo and SignIn calls/s and latency with N calls in\n"
      "flight, and mamd's VmRSS with N live sessions.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("mamd-bench: %s\n", error->message);
      return 2;
    }
  if (echo_address != NULL)
    return bench_echo_service_run (echo_address);
  if (plugin == NULL)
    plugin = g_strdup ("test");
  if (mamd_path == NULL)
    mamd_path = g_strdup (MAMD_BENCH_MAMD);
  if (smoke)
    {
      seconds = 1;
      sessions = 100;
    }
  if (in_flight < 1 || in_flight > 1024 || seconds < 1 || sessions < 0 || rounds < 1
      || rounds > 99 || n_tokens < 1 || n_tokens > 1000000
      || (g_strcmp0 (plugin, "test") != 0 && g_strcmp0 (plugin, "office365") != 0))
    {
      g_printerr ("mamd-bench: --in-flight 1..1024, --seconds >= 1, --sessions >= 0, "
                  "--rounds 1..99, --tokens 1..1000000, --plugin test or office365\n");
      return 2;
    }
  if (smoke)
    n_tokens = MIN (n_tokens, 50);
  r.plugin = plugin;
  r.ratio_goal = RATIO_GOAL;
  r.ratios = ratios;
  if (plugin_dir == NULL)
    plugin_dir = g_strdup (g_strcmp0 (plugin, "office365") == 0 ? MAMD_BENCH_OAUTH_PLUGIN_DIR
                                                                 : MAMD_BENCH_PLUGIN_DIR);
  if (g_strcmp0 (plugin, "office365") == 0)
    {
      idp = bench_idp_start ((guint) n_tokens, &error);
      if (idp == NULL)
        {
          g_printerr ("mamd-bench: %s\n", error->message);
          return 1;
        }
      bench_idp = idp;
      r.tokens = (guint) n_tokens;
      r.ratio_goal = RATIO_GOAL_OFFICE365;
    }
  r.in_flight = in_flight;
  r.seconds = seconds;
  r.sessions = sessions;

  options.mamd_path = mamd_path;
  options.plugin_dir = plugin_dir;
  options.max_sessions = MAX ((guint) sessions * 2, 200000u);
  options.max_in_flight = MAX ((guint) in_flight * 2, 64u);
  options.auth_service = bench_method ();
  options.authority = idp != NULL ? bench_idp_get_authority (idp) : NULL;
  env = bench_env_start (&options, &error);
  if (env == NULL)
    {
      g_printerr ("mamd-bench: cannot set up: %s\n", error->message);
      return 1;
    }

  if (!measure_disk_sync (env->dir, smoke ? 0.2 : 1.0, &r.disk, &error)
      || !measure_rounds (env, in_flight, seconds, (guint) rounds, &r, &error)
      || !fill_sessions (env, MAX (in_flight, 32), sessions, &r, &error))
    {
      g_dbus_error_strip_remote_error (error);
      g_printerr ("mamd-bench: %s\n", error->message);
      return 1;
    }
  if (json)
    print_json (&r);
  else
    print_text (&r);

  if (smoke && (r.disk.calls == 0 || r.echo.calls == 0 || r.sign_in.calls == 0 || r.ratio <= 0
                || r.live_sessions < (guint) sessions || r.rss_kib == 0))
    {
      g_printerr ("mamd-bench: smoke run produced a zero measurement\n");
      return 1;
    }
  return 0;
}
