/*
 * Plain records shared by the engine and the store. Small structs, no
 * GObject: 100,000 live sessions must fit in well under 100 MiB.
 *
 * Fields marked "interned" hold g_intern_string() results: never freed,
 * compared by pointer, shared between all records.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  MAMD_SESSION_STATE_ACTIVE,              /* MAM does not apply: unrestricted */
  MAMD_SESSION_STATE_ENROLLMENT_REQUIRED, /* restricted until enrollment succeeds */
  MAMD_SESSION_STATE_ENROLLED,            /* enrolled: unrestricted */
  MAMD_SESSION_STATE_DECLINED,            /* user declined: restricted, may retry */
  MAMD_SESSION_STATE_REVOKED,             /* terminal */
} MamdSessionState;

const char *mamd_session_state_to_string (MamdSessionState state);
gboolean mamd_session_state_from_string (const char *text, MamdSessionState *out);

typedef struct {
  char *id;                 /* 32 lowercase hex characters */
  const char *server_id;    /* interned */
  const char *method;       /* interned: auth method used to sign in */
  char *object_id;          /* canonical GUID */
  const char *tenant_id;    /* interned canonical GUID */
  char *user_name;          /* may be NULL */
  char *device_id;
  const char *platform;     /* interned: "ios", "android", ... */
  const char *id_attribute; /* interned provenance */
  const char *id_source;    /* interned provenance */
  const char *reason;       /* interned, may be NULL: why the state is what it is */
  guint32 owner_uid;        /* uid of the caller that signed the session in */
  MamdSessionState state;
  gboolean mam_required;    /* MAM applied when the state was last evaluated */
  gint64 created;           /* unix time, microseconds */
  gint64 updated;
  guint64 seq;              /* sequence number of the last event on this session */
} MamdSessionRecord;

MamdSessionRecord *mamd_session_record_new (void);
MamdSessionRecord *mamd_session_record_copy (const MamdSessionRecord *rec);
void mamd_session_record_free (MamdSessionRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdSessionRecord, mamd_session_record_free)

typedef struct {
  const char *server_id;    /* interned */
  const char *auth_service; /* interned */
  char *object_id;          /* canonical GUID: the user's auth data */
  char *user_name;          /* may be NULL */
  gint64 created;
} MamdUserRecord;

MamdUserRecord *mamd_user_record_new (void);
MamdUserRecord *mamd_user_record_copy (const MamdUserRecord *rec);
void mamd_user_record_free (MamdUserRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdUserRecord, mamd_user_record_free)

/* A server removed from one device after a technical enrollment failure. */
typedef struct {
  const char *server_id; /* interned */
  char *device_id;
  char *object_id;
  char *reason;
  gint64 removed;
  gint64 owner_uid;      /* uid whose session failed, or -1: admins only */
} MamdRemovedServerRecord;

MamdRemovedServerRecord *mamd_removed_server_record_new (void);
MamdRemovedServerRecord *mamd_removed_server_record_copy (const MamdRemovedServerRecord *rec);
void mamd_removed_server_record_free (MamdRemovedServerRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdRemovedServerRecord, mamd_removed_server_record_free)

typedef struct {
  char *id;              /* 32 lowercase hex characters */
  const char *server_id; /* interned */
  char *device_id;
  char *object_id;
  char *session_id;
  char *reason;
  gint64 created;
  gint64 expires;        /* given up after this time */
  guint64 seq;           /* event that requested it */
  gint64 owner_uid;      /* uid whose session failed, or -1: admins only */
} MamdWipeRecord;

MamdWipeRecord *mamd_wipe_record_new (void);
MamdWipeRecord *mamd_wipe_record_copy (const MamdWipeRecord *rec);
void mamd_wipe_record_free (MamdWipeRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdWipeRecord, mamd_wipe_record_free)

/* The policy last announced for one server (PolicyChanged): kept so that a
 * change made while mamd was stopped is announced when it starts. */
typedef struct {
  const char *server_id; /* interned */
  gboolean mam_applies;  /* the server's Enable */
  gboolean gate_open;
  char *reason;          /* what the gate needs, or that it is open */
} MamdPolicyRecord;

MamdPolicyRecord *mamd_policy_record_new (void);
MamdPolicyRecord *mamd_policy_record_copy (const MamdPolicyRecord *rec);
void mamd_policy_record_free (MamdPolicyRecord *rec);
gboolean mamd_policy_record_equal (const MamdPolicyRecord *a, const MamdPolicyRecord *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdPolicyRecord, mamd_policy_record_free)

typedef struct {
  guint64 seq;            /* strictly increasing, never reused */
  gint64 time;            /* unix time, microseconds */
  char *type;             /* e.g. "session-created", "wipe-requested" */
  char *server_id;        /* may be NULL */
  char *session_id;       /* may be NULL */
  char *decision_id;      /* may be NULL */
  GVariant *detail;       /* a{sv}, never NULL once built; never a credential */
} MamdEventRecord;

MamdEventRecord *mamd_event_record_new (void);
MamdEventRecord *mamd_event_record_copy (const MamdEventRecord *rec);
void mamd_event_record_free (MamdEventRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdEventRecord, mamd_event_record_free)

/* 32 lowercase hex characters from 128 random bits (wipe and decision ids). */
char *mamd_random_id (void);

/* One {sv} entry (floating), for building an a{sv} with g_variant_new_array()
 * on hot paths, where a GVariantBuilder's format parsing costs more than the
 * data. */
GVariant *mamd_vardict_entry (const char *key, GVariant *value);
/* The same shape: 48 bits of @now (unix µs) in milliseconds, then 80 random
 * bits. Session ids: still unguessable, and in creation order, so that the
 * store appends new sessions instead of scattering them. */
char *mamd_time_ordered_id (gint64 now);
gboolean mamd_id_is_valid (const char *id);

G_END_DECLS
