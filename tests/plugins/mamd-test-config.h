/*
 * MamdTestConfig: the parsed [test] group of one server's configuration,
 * as the test plugin's load_config returns it.
 */
#pragma once

#include <mamd-plugin.h>

G_BEGIN_DECLS

typedef enum {
  MAMD_TEST_GATE_OPEN,
  MAMD_TEST_GATE_INVALID_RESOURCE,
} MamdTestGate;

#define MAMD_TYPE_TEST_CONFIG (mamd_test_config_get_type ())
G_DECLARE_FINAL_TYPE (MamdTestConfig, mamd_test_config, MAMD, TEST_CONFIG, GObject)

/* Errors are MAMD_ERROR_INVALID_CONFIG naming group and key. */
MamdTestConfig *mamd_test_config_new_from_keyfile (const char *server_id,
                                                   const char *tenant_id,
                                                   GKeyFile   *keyfile,
                                                   const char *group,
                                                   GError    **error);
const char *mamd_test_config_get_server_id (MamdTestConfig *self);
guint mamd_test_config_get_delay_ms (MamdTestConfig *self);
guint mamd_test_config_get_sync_delay_ms (MamdTestConfig *self);
MamdTestGate mamd_test_config_get_gate (MamdTestConfig *self);
/* MamdIdentity elements, owned by the config. */
GPtrArray *mamd_test_config_get_users (MamdTestConfig *self);

G_END_DECLS
