# termloom shell integration for fish: OSC 133 marks (A prompt start, C command start,
# D;<exit> command end) and OSC 7 (working directory), plus a one-line state file for
# `termloom status` when $TERMLOOM_STATE_FILE is set. Written by termloom; it holds no user data.
# Sourcing it again is harmless: the functions and their event handlers are replaced.
if status is-interactive
    set -q __termloom_last; or set -g __termloom_last -

    function __termloom_osc7
        printf '\e]7;file://%s%s\a' $hostname (string escape --style=url -- $PWD)
    end

    function __termloom_preexec --on-event fish_preexec
        set -g __termloom_cmd 1
        if set -q TERMLOOM_STATE_FILE
            printf 'fish busy %s\n' $__termloom_last >$TERMLOOM_STATE_FILE 2>/dev/null
        end
        printf '\e]133;C\a'
    end

    function __termloom_postexec --on-event fish_postexec
        set -l s $status
        if set -q __termloom_cmd
            set -e __termloom_cmd
            set -g __termloom_last $s
            # The state file first: whoever sees D finds it up to date.
            if set -q TERMLOOM_STATE_FILE
                printf 'fish idle %s\n' $s >$TERMLOOM_STATE_FILE 2>/dev/null
            end
            printf '\e]133;D;%s\a' $s
        end
    end

    function __termloom_prompt --on-event fish_prompt
        __termloom_osc7
        printf '\e]133;A\a'
        if set -q TERMLOOM_STATE_FILE
            printf 'fish idle %s\n' $__termloom_last >$TERMLOOM_STATE_FILE 2>/dev/null
        end
    end
end
