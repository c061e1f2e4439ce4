/*
 * ember/sdk.h — the whole plugin SDK in one include.
 *
 * A plugin includes this, declares its components and ends with
 * EMBER_PLUGIN(...). See docs/plugin-sdk.md.
 */
#ifndef EMBER_SDK_H
#define EMBER_SDK_H

#include "ember/abi.h"
#include "ember/batch.h"
#include "ember/buf.h"
#include "ember/cluster_manager.h"
#include "ember/codec.h"
#include "ember/function.h"
#include "ember/host.h"
#include "ember/plugin.h"
#include "ember/record.h"
#include "ember/shuffle.h"
#include "ember/sink.h"
#include "ember/source.h"
#include "ember/storage.h"

#endif /* EMBER_SDK_H */
