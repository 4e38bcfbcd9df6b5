// Integration tests of the launcher's RTSPS: the real camrelay binary with a
// self-signed certificate made by openssl at test time, and real clients
// (rtspsrc in this process, ffprobe from Debian, a raw RTSP probe).
#include <gio/gio.h>
#include <glib/gstdio.h>

#include <csignal>
#include <fstream>
#include <string>

#include "launcher_test_util.h"

namespace {

using namespace camrelay::launcher_test;

// A self-signed certificate for 127.0.0.1 and its key, in a directory of
// their own that goes away with the object.
class SelfSignedCertificate {
 public:
  SelfSignedCertificate ()
  {
    gchar *dir = g_dir_make_tmp ("camrelay-tls-XXXXXX", nullptr);
    if (!dir) {
      ADD_FAILURE () << "cannot make a temporary directory";
      return;
    }
    dir_ = dir;
    g_free (dir);
    cert = dir_ + "/cert.pem";
    key = dir_ + "/key.pem";
    int status = 0;
    // Through sh for 2>&1: openssl reports key generation progress on stderr.
    const std::string output = run ("sh -c 'openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                                    "-subj /CN=127.0.0.1 -keyout " + key + " -out " + cert
            + " 2>&1'",
        status);
    if (status != 0 || !g_file_test (cert.c_str (), G_FILE_TEST_IS_REGULAR))
      ADD_FAILURE () << "openssl could not make a certificate (is the openssl package "
                        "installed?): "
                     << output;
  }
  ~SelfSignedCertificate ()
  {
    for (const std::string &file : files_)
      g_unlink (file.c_str ());
    g_unlink (cert.c_str ());
    g_unlink (key.c_str ());
    if (!dir_.empty ())
      g_rmdir (dir_.c_str ());
  }
  SelfSignedCertificate (const SelfSignedCertificate &) = delete;
  SelfSignedCertificate &operator= (const SelfSignedCertificate &) = delete;

  // Another file in the same directory, removed with it.
  std::string file (const std::string &name, const std::string &contents)
  {
    const std::string path = dir_ + "/" + name;
    std::ofstream (path) << contents;
    files_.push_back (path);
    return path;
  }

  std::string cert;
  std::string key;

 private:
  std::string dir_;
  std::vector<std::string> files_;
};

// A configuration serving RTSPS on 127.0.0.1 (a port of its own), no HTTP.
std::string
tls_config_text (const std::string &cert, const std::string &key, const std::string &rest)
{
  return "[server]\nbind = \"127.0.0.1\"\nport = 0\ntls_cert = \"" + cert + "\"\ntls_key = \""
      + key + "\"\n\n[http]\nenabled = false\n\n" + rest;
}

std::string
rtsps_url (int port, const std::string &mount)
{
  return "rtsps://127.0.0.1:" + std::to_string (port) + "/" + mount;
}

// Without [[users]]: every camera is open to any RTSPS client (rtspsrc,
// ffprobe), the start-up lines say rtsps://, and a camera added by SIGHUP is
// open too.
TEST (LauncherTls, RtspsClientsDecodeFrames)
{
  SelfSignedCertificate tls;
  const std::string path = write_config (tls_config_text (tls.cert, tls.key,
      camera_entry ("front", "test://front?width=320&height=240")
      + camera_entry ("back", "test://back?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  EXPECT_NE (camrelay.wait_line ("camera(s) on RTSPS 127.0.0.1:" + std::to_string (port), 1s), "")
      << camrelay.all_output ();
  EXPECT_NE (camrelay.wait_line ("  " + rtsps_url (port, "front"), 1s), "") << camrelay.all_output ();
  EXPECT_NE (camrelay.wait_line ("  " + rtsps_url (port, "back"), 1s), "") << camrelay.all_output ();
  EXPECT_EQ (camrelay.all_output ().find ("rtsp://127.0.0.1"), std::string::npos)
      << camrelay.all_output ();

  {
    RtspClient client (rtsps_url (port, "front") + " tls-validation-flags=0", "tcp");
    EXPECT_TRUE (client.wait_frames (10, 20s)) << camrelay.all_output ();
  }

  // ffmpeg does not verify the server's certificate unless asked (tls_verify).
  int status = 0;
  std::string probe = run ("timeout 20 ffprobe -v error -rtsp_transport tcp -show_entries "
                           "stream=codec_name,width,height -of csv=p=0 " + rtsps_url (port, "back"),
      status);
  EXPECT_EQ (status, 0) << camrelay.all_output ();
  EXPECT_EQ (probe, "h264,320,240\n");

  std::ofstream (path) << tls_config_text (tls.cert, tls.key,
      camera_entry ("front", "test://front?width=320&height=240")
      + camera_entry ("back", "test://back?width=320&height=240")
      + camera_entry ("added", "test://added?width=320&height=240"));
  camrelay.send_signal (SIGHUP);
  ASSERT_NE (camrelay.wait_line ("added: connecting -> streaming", 20s), "") << camrelay.all_output ();
  RtspProbe secure (port, true);
  EXPECT_EQ (secure.describe ("front"), "RTSP/1.0 200 OK");
  EXPECT_EQ (secure.describe ("added"), "RTSP/1.0 200 OK") << "a camera added by reload";
  EXPECT_EQ (secure.describe ("none"), "RTSP/1.0 404 Not Found");

  expect_clean_stop (camrelay, path);
}

// The RTSPS port speaks TLS only: a plain RTSP client gets no answer and no
// video, and RTSPS clients are served after it.
TEST (LauncherTls, PlainRtspToTheTlsPortGetsNoVideo)
{
  SelfSignedCertificate tls;
  const std::string path = write_config (tls_config_text (tls.cert, tls.key,
      camera_entry ("front", "test://front?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("front: connecting -> streaming", 20s), "") << camrelay.all_output ();

  {
    RtspProbe plain (port);
    const std::string status = plain.describe ("front");
    EXPECT_EQ (status.rfind ("RTSP/", 0), std::string::npos) << "a plain request was answered: "
                                                            << status;
  }
  {
    RtspClient plain ("rtsp://127.0.0.1:" + std::to_string (port) + "/front", "tcp");
    camrelay::BusPtr bus{gst_element_get_bus (plain.pipeline.get ())};
    camrelay::MessagePtr error{gst_bus_timed_pop_filtered (bus.get (), 20 * GST_SECOND,
        GST_MESSAGE_ERROR)};
    EXPECT_NE (error, nullptr) << "rtspsrc did not give up on the TLS port";
    EXPECT_EQ (plain.frames.load (), 0);
  }

  RtspProbe secure (port, true);
  EXPECT_EQ (secure.describe ("front"), "RTSP/1.0 200 OK") << camrelay.all_output ();
  RtspClient client (rtsps_url (port, "front") + " tls-validation-flags=0", "tcp");
  EXPECT_TRUE (client.wait_frames (10, 20s)) << camrelay.all_output ();

  expect_clean_stop (camrelay, path);
}

// A certificate or key that cannot be used: exit status 1, one line naming
// the file and why, and nothing starts.  A file that cannot be read at all is
// already a configuration error (exit status 2) naming it.
TEST (LauncherTls, UnusableCertificateOrKeyIsAOneLineError)
{
  SelfSignedCertificate tls;
  const std::string garbage = tls.file ("garbage.pem", "not a PEM file\n");
  struct Case {
    std::string cert, key, named;
    int exit_status;
  };
  const Case cases[] = {
    {garbage, tls.key, garbage, 1},
    {tls.cert, garbage, garbage, 1},
    {tls.key, tls.cert, tls.key, 1},  // swapped: tls_cert names a file with no certificate
    {tls.cert, tls.cert, tls.cert, 1},  // tls_key names a file with no key
    {tls.cert + ".missing", tls.key, tls.cert + ".missing", 2},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE ("tls_cert " + c.cert + ", tls_key " + c.key);
    const std::string path = write_config (tls_config_text (c.cert, c.key,
        camera_entry ("front", "test://front?width=320&height=240")));
    Launcher camrelay ({"-c", path});
    EXPECT_EQ (camrelay.wait_exit (10s), c.exit_status) << camrelay.all_output ();
    const std::string line = camrelay.wait_line ("\"" + c.named + "\"", 1s);
    EXPECT_NE (line, "") << camrelay.all_output ();
    if (c.exit_status == 1) {
      EXPECT_EQ (line.rfind ("camrelay: server.tls_", 0), 0u) << line;
      EXPECT_GT (line.size (), line.find ("\": ") + 4) << "the reason is missing: " << line;
    }
    EXPECT_EQ (camrelay.wait_line ("on RTSP", 0ms), "") << "nothing may start";
    EXPECT_EQ (camrelay.wait_line ("connecting", 0ms), "") << "no camera may start";
    g_unlink (path.c_str ());
  }
}

// RTSPS with [[users]]: 401 without credentials, frames with them, and a
// camera's permitted users still apply.
TEST (LauncherTls, UsersAuthenticateOverTls)
{
  SelfSignedCertificate tls;
  const std::string users = "[[users]]\nname = \"alice\"\npassword = \"wonder\"\n\n"
      "[[users]]\nname = \"bob\"\npassword_hash = \"sha256:" + sha256 ("builder") + "\"\n\n";
  const std::string path = write_config (tls_config_text (tls.cert, tls.key, users
      + camera_entry ("front", "test://front?width=320&height=240")
      + camera_entry ("private", "test://private?width=320&height=240")
      + "users = [\"alice\"]\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("front: connecting -> streaming", 20s), "") << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("private: connecting -> streaming", 20s), "") << camrelay.all_output ();

  RtspProbe secure (port, true);
  EXPECT_EQ (secure.describe ("front"), "RTSP/1.0 401 Unauthorized") << "no credentials";
  EXPECT_EQ (secure.describe ("front", "alice:wrong"), "RTSP/1.0 401 Unauthorized");
  EXPECT_EQ (secure.describe ("front", "alice:wonder"), "RTSP/1.0 200 OK");
  EXPECT_EQ (secure.describe ("front", "bob:builder"), "RTSP/1.0 200 OK") << "password hash";
  EXPECT_EQ (secure.describe ("private", "alice:wonder"), "RTSP/1.0 200 OK");
  EXPECT_EQ (secure.describe ("private", "bob:builder"), "RTSP/1.0 404 Not Found")
      << "bob is not a permitted user of private";

  {
    RtspClient client (rtsps_url (port, "private")
            + " tls-validation-flags=0 user-id=alice user-pw=wonder",
        "tcp");
    EXPECT_TRUE (client.wait_frames (10, 20s)) << camrelay.all_output ();
  }
  // ffmpeg picks Digest, which a user known by a password hash cannot use.
  int status = 0;
  std::string probe = run ("timeout 20 ffprobe -v error -rtsp_transport tcp -show_entries "
                           "stream=codec_name -of csv=p=0 rtsps://alice:wonder@127.0.0.1:"
          + std::to_string (port) + "/front",
      status);
  EXPECT_EQ (status, 0) << camrelay.all_output ();
  EXPECT_EQ (probe, "h264\n");

  camrelay.send_signal (SIGTERM);
  EXPECT_EQ (camrelay.wait_exit (5s), 0) << camrelay.all_output ();
  EXPECT_EQ (camrelay.all_output ().find ("wonder"), std::string::npos) << "a password was logged";
  g_unlink (path.c_str ());
}

}  // namespace
