/*
 * mamd's log writer. Under systemd (stderr is the journal) every message
 * goes to the journal with its structured fields, MAMD_EVENT and the rest.
 * Otherwise GLib's default writer prints, except for messages (the audit
 * log's level) on a stderr that is not a terminal: those are formatted here
 * in the default writer's layout and written with one write(2). The audit
 * log writes a line per event, and the default writer's localtime() reads
 * the time zone file again for every line.
 */
#include "config.h"

#include "mamd-log.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

static gboolean to_journal;
static gboolean plain_stderr;

static void
write_all (int fd, const char *text, gsize length)
{
  while (length > 0) {
    gssize written = write (fd, text, length);

    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return;
    text += written;
    length -= (gsize) written;
  }
}

static GLogWriterOutput
write_message_line (const char *domain, const char *message)
{
  gint64 now = g_get_real_time ();
  time_t seconds = (time_t) (now / G_USEC_PER_SEC);
  struct tm local;
  char clock[16] = "";
  g_autofree char *line = NULL;

  if (localtime_r (&seconds, &local) != NULL)
    strftime (clock, sizeof clock, "%H:%M:%S", &local);
  line = g_strdup_printf ("%s%sMessage: %s.%03d: %s\n", domain != NULL ? domain : "** ",
                          domain != NULL ? "-" : "", clock, (int) ((now / 1000) % 1000),
                          message != NULL ? message : "(NULL) message");
  write_all (STDERR_FILENO, line, strlen (line));
  return G_LOG_WRITER_HANDLED;
}

static GLogWriterOutput
mamd_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                 gpointer user_data)
{
  const char *domain = NULL;
  const char *message = NULL;

  for (gsize i = 0; i < n_fields; i++) {
    if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
      domain = fields[i].value;
    else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
      message = fields[i].value;
  }
  if (g_log_writer_default_would_drop (level, domain))
    return G_LOG_WRITER_HANDLED;
  if (to_journal && g_log_writer_journald (level, fields, n_fields, user_data) ==
                      G_LOG_WRITER_HANDLED)
    return G_LOG_WRITER_HANDLED;
  if (plain_stderr && (level & G_LOG_LEVEL_MASK) == G_LOG_LEVEL_MESSAGE)
    return write_message_line (domain, message);
  return g_log_writer_default (level, fields, n_fields, user_data);
}

void
mamd_log_init (void)
{
  to_journal = g_log_writer_is_journald (STDERR_FILENO);
  plain_stderr = !to_journal && !isatty (STDERR_FILENO);
  g_log_set_writer_func (mamd_log_writer, NULL, NULL);
}
