// One way to register an enum GType and one way to read a value's nick, for
// the elements, the launcher and the tests (header-only).
#pragma once

#include <glib-object.h>

// Defines `GType func (void)` registering enum `name` with the GEnumValue
// entries given (the terminating entry is added).
#define CAMRELAY_DEFINE_ENUM_TYPE(func, name, ...)                            \
  GType func (void)                                                          \
  {                                                                          \
    static gsize type_id = 0;                                                \
    static const GEnumValue values[] = {__VA_ARGS__, {0, nullptr, nullptr}}; \
    if (g_once_init_enter (&type_id))                                        \
      g_once_init_leave (&type_id, g_enum_register_static (name, values));   \
    return static_cast<GType> (type_id);                                     \
  }

namespace camrelay {

// The nick of `value` of enum type `type`, or nullptr when it has none.  The
// nicks of a registered enum live as long as the program.
inline const char *
enum_nick (GType type, gint value)
{
  if (!G_TYPE_IS_ENUM (type))
    return nullptr;
  GEnumClass *klass = static_cast<GEnumClass *> (g_type_class_ref (type));
  const GEnumValue *enum_value = g_enum_get_value (klass, value);
  const char *nick = enum_value ? enum_value->value_nick : nullptr;
  g_type_class_unref (klass);
  return nick;
}

// The nick of the enum held by `value`, or nullptr.
inline const char *
enum_nick (const GValue *value)
{
  if (!value || !G_VALUE_HOLDS_ENUM (value))
    return nullptr;
  return enum_nick (G_VALUE_TYPE (value), g_value_get_enum (value));
}

}  // namespace camrelay
