// ffmpeg as a real client of the launcher's integration tests: a child process
// whose decoded frames (one framemd5 line each, on stdout) and messages
// (stderr) are read line by line as they come, with the time each arrived.
#pragma once

#include <functional>

#include "launcher_test_util.h"

namespace camrelay::launcher_test {

inline bool
have_program (const char *name)
{
  gchar *path = g_find_program_in_path (name);
  const bool found = path != nullptr;
  g_free (path);
  return found;
}

// One picture ffmpeg decoded: when its framemd5 line arrived and the MD5 of
// its pixels (two equal MD5s: the same picture).
struct DecodedFrame {
  Clock::time_point arrived;
  std::string md5;
};

// The output options that make ffmpeg print one line per decoded picture as
// soon as it is decoded: every picture (no frame rate conversion), as 8-bit
// grey (cheap to hash), flushed at once.
inline std::vector<std::string>
framemd5_output ()
{
  return {"-an", "-fps_mode", "passthrough", "-pix_fmt", "gray", "-f", "framemd5",
      "-flush_packets", "1", "pipe:1"};
}

// `ffmpeg ARGS...`, killed with the test if the test dies.
class FfmpegClient {
 public:
  explicit FfmpegClient (const std::vector<std::string> &args)
  {
    std::vector<const char *> argv{"ffmpeg"};
    for (const std::string &a : args)
      argv.push_back (a.c_str ());
    argv.push_back (nullptr);
    GError *error = nullptr;
    GSubprocessLauncher *launcher = g_subprocess_launcher_new (static_cast<GSubprocessFlags> (
        G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
        | G_SUBPROCESS_FLAGS_STDERR_PIPE));
    g_subprocess_launcher_set_child_setup (
        launcher, [] (gpointer) { prctl (PR_SET_PDEATHSIG, SIGKILL); }, nullptr, nullptr);
    started_ = Clock::now ();
    process_ = g_subprocess_launcher_spawnv (launcher, argv.data (), &error);
    g_object_unref (launcher);
    if (!process_) {
      ADD_FAILURE () << "cannot start ffmpeg: " << error->message;
      g_error_free (error);
      return;
    }
    out_reader_ = std::thread ([this] { read_lines (g_subprocess_get_stdout_pipe (process_), true); });
    err_reader_ = std::thread ([this] { read_lines (g_subprocess_get_stderr_pipe (process_), false); });
  }

  ~FfmpegClient ()
  {
    if (process_) {
      if (running ())
        g_subprocess_force_exit (process_);
      g_subprocess_wait (process_, nullptr, nullptr);
    }
    if (out_reader_.joinable ())
      out_reader_.join ();
    if (err_reader_.joinable ())
      err_reader_.join ();
    if (process_)
      g_object_unref (process_);
  }
  FfmpegClient (const FfmpegClient &) = delete;
  FfmpegClient &operator= (const FfmpegClient &) = delete;

  Clock::time_point started () const { return started_; }

  // Whether ffmpeg still runs (its stdout and stderr are open).
  bool running () const
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return process_ && !(out_closed_ && err_closed_);
  }

  // Waits until `done` holds for the frames decoded so far, ffmpeg ends, or
  // `timeout` passes; whether `done` held.
  bool wait_frames (const std::function<bool (const std::vector<DecodedFrame> &)> &done,
      std::chrono::milliseconds timeout)
  {
    std::unique_lock<std::mutex> lock (mutex_);
    changed_.wait_for (lock, timeout, [&] { return done (frames_) || (out_closed_ && err_closed_); });
    return done (frames_);
  }

  std::vector<DecodedFrame> frames ()
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return frames_;
  }

  size_t frame_count ()
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return frames_.size ();
  }

  // Everything ffmpeg printed on stderr so far.
  std::string messages ()
  {
    std::lock_guard<std::mutex> lock (mutex_);
    return messages_;
  }

  // Asks ffmpeg to finish as a user would ('q' on its stdin), then waits
  // (bounded) for it to exit; its exit status, or -1.
  int quit (std::chrono::milliseconds timeout)
  {
    if (!process_)
      return -1;
    GOutputStream *in = g_subprocess_get_stdin_pipe (process_);
    g_output_stream_write_all (in, "q", 1, nullptr, nullptr, nullptr);
    g_output_stream_close (in, nullptr, nullptr);
    return wait_exit (timeout);
  }

  // Waits (bounded) for ffmpeg to exit; its exit status, or -1.
  int wait_exit (std::chrono::milliseconds timeout)
  {
    {
      std::unique_lock<std::mutex> lock (mutex_);
      if (!changed_.wait_for (lock, timeout, [this] { return out_closed_ && err_closed_; }))
        return -1;
    }
    g_subprocess_wait (process_, nullptr, nullptr);
    return g_subprocess_get_if_exited (process_) ? g_subprocess_get_exit_status (process_) : -1;
  }

 private:
  void read_lines (GInputStream *stream, bool is_stdout)
  {
    GDataInputStream *data = g_data_input_stream_new (stream);
    while (true) {
      gsize length = 0;
      gchar *line = g_data_input_stream_read_line (data, &length, nullptr, nullptr);
      if (!line)
        break;
      const auto now = Clock::now ();
      {
        std::lock_guard<std::mutex> lock (mutex_);
        if (!is_stdout) {
          messages_ += line;
          messages_ += "\n";
        } else if (line[0] != '#') {
          // "stream, dts, pts, duration, size, md5"
          const char *md5 = std::strrchr (line, ',');
          if (md5) {
            std::string hash = md5 + 1;
            hash.erase (0, hash.find_first_not_of (' '));
            frames_.push_back ({now, hash});
          }
        }
      }
      g_free (line);
      changed_.notify_all ();
    }
    g_object_unref (data);
    {
      std::lock_guard<std::mutex> lock (mutex_);
      (is_stdout ? out_closed_ : err_closed_) = true;
    }
    changed_.notify_all ();
  }

  GSubprocess *process_ = nullptr;
  Clock::time_point started_;
  std::thread out_reader_;
  std::thread err_reader_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<DecodedFrame> frames_;
  std::string messages_;
  bool out_closed_ = false;  // under mutex_, as the next
  bool err_closed_ = false;
};

}  // namespace camrelay::launcher_test
