/* auth.h: private header of the auth service.
 *
 * Its one job: OAuth2 token service: clients, tokens, refresh rotation, revocation, introspection,
 * JWKS, key rotation.
 */
#ifndef SB_AUTH_H
#define SB_AUTH_H

#include "sb_service.h"

struct auth_cfg {
	struct sb_common_cfg common;
};

/* config.c */
extern const struct sb_cfg_key auth_config[];
extern const struct sb_service_def auth_service;

#endif
