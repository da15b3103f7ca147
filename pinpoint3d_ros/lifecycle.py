"""
pinpoint3d_node as a managed (lifecycle) node, for systems that bring perception up in order.

Transitions (``~/change_state``, lifecycle_msgs):

- configure: load the weights (``preset``/``checkpoint``/``device``); a failure is logged with
  the reason and the node stays unconfigured. Creates the latched result publishers.
- activate: subscribe to the cloud and click topics and offer ``~/click_segment`` and
  ``~/reset``.
- deactivate: remove those subscriptions and services (clients then see no service).
- cleanup: remove the publishers and release the model, its encoding and the clicks.
- shutdown: all of the above.

``preset``, ``checkpoint``, ``device``, ``voxel_size`` and the inference settings can be set
while the node is unconfigured (``ros2 param set``), and are refused in the other states with
the way to get there. /diagnostics reports the lifecycle state from the start.

Run it with ``ros2 run pinpoint3d pinpoint3d_lifecycle_node`` (or ``lifecycle:=true`` in the
launch file) and drive it with ``ros2 lifecycle set /pinpoint3d_node configure`` / ``activate``.
"""

from pinpoint3d_ros.node import Pinpoint3DNode
from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn


class Pinpoint3DLifecycleNode(LifecycleNodeMixin, Pinpoint3DNode):
    """The pinpoint3d node whose model and interfaces follow the ROS 2 lifecycle."""

    def __init__(self, **kwargs):
        Pinpoint3DNode.__init__(self, lifecycle=True, **kwargs)
        LifecycleNodeMixin.__init__(self, enable_communication_interface=True)
        self.get_logger().info("unconfigured: 'configure' loads the weights, 'activate' "
                               'starts the subscriptions and services')

    def lifecycle_state(self) -> str:
        """Return the current state label (unconfigured, inactive, active, finalized, ...)."""
        return str(self._state_machine.current_state[1])

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the weights and create the publishers; FAILURE (stay unconfigured) if not."""
        if not self._load_model():
            return TransitionCallbackReturn.FAILURE
        self._create_outputs()
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs and offer the services."""
        self._create_inputs()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop serving: remove the subscriptions and services."""
        self._destroy_inputs()
        self.get_logger().info('inactive: subscriptions and services removed')
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Remove the publishers and release the model."""
        self._destroy_outputs()
        self._release_model()
        _free_accelerator_memory()
        self.get_logger().info('unconfigured: model released')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, from whichever state."""
        self._destroy_inputs()
        self._destroy_outputs()
        self._release_model()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything after a failed transition; back to unconfigured."""
        self.get_logger().error(f"error in transition from '{state.label}': releasing all")
        return self.on_shutdown(state)


def _free_accelerator_memory():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main(args=None):
    """Run the lifecycle node (it starts unconfigured) until SIGINT or SIGTERM; clean stop."""
    from pinpoint3d_ros.node import run
    return run(Pinpoint3DLifecycleNode, args)


if __name__ == '__main__':
    main()
