/*
 * LD_PRELOAD shim for role tests: getpwnam_r() answers from the file named
 * by MAMD_TEST_PASSWD ("name:uid" lines, read at every call, so a test can
 * create, rename and delete users while mamd runs); without the variable
 * it is the C library's. No root needed, /etc/passwd is not touched.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*GetpwnamR) (const char *, struct passwd *, char *, size_t, struct passwd **);

int
getpwnam_r (const char *name, struct passwd *pwd, char *buf, size_t buflen,
            struct passwd **result)
{
  const char *path = getenv ("MAMD_TEST_PASSWD");
  char line[256];
  FILE *file;

  *result = NULL;
  if (path == NULL) {
    GetpwnamR real = (GetpwnamR) dlsym (RTLD_NEXT, "getpwnam_r");
    return real (name, pwd, buf, buflen, result);
  }
  file = fopen (path, "re");
  if (file == NULL)
    return errno;
  while (fgets (line, sizeof line, file) != NULL) {
    char *colon = strchr (line, ':');

    if (colon == NULL)
      continue;
    *colon = '\0';
    if (strcmp (line, name) != 0 || strlen (name) + 1 > buflen)
      continue;
    memset (pwd, 0, sizeof *pwd);
    pwd->pw_name = strcpy (buf, name);
    pwd->pw_passwd = pwd->pw_gecos = pwd->pw_dir = pwd->pw_shell = buf + strlen (name);
    pwd->pw_uid = pwd->pw_gid = (uid_t) strtoul (colon + 1, NULL, 10);
    *result = pwd;
    break;
  }
  fclose (file);
  return 0;
}
