`default_nettype none
// pipe_extern_ts: the timestamp extern (docs/pipeline.md 5.7, kind 3).
//
// floor(admit_cycle * 10^6 / CLOCK_KHZ) ns, admit_cycle = core cycles from reset to the
// packet's first entry into stage 0 (carried in the PHV). Registered.
module pipe_extern_ts #(
    parameter CLOCK_KHZ = 250000  // core clock, kHz (clock_mhz * 1000)
) (
    input  wire        clk,
    input  wire        rst,
    input  wire        in_valid,
    input  wire [63:0] admit_cycle,
    output reg         out_valid,
    output reg  [63:0] out_value
);
    localparam [83:0] KHZ = CLOCK_KHZ;
`ifndef SYNTHESIS
    initial begin
        if (CLOCK_KHZ < 1) begin
            $display("pipe_extern_ts: CLOCK_KHZ %0d must be >= 1", CLOCK_KHZ);
            $finish;
        end
    end
`endif
    reg [83:0] ns;

    // computed at the clock edge when the unit executes (see pipe_alu)
    always @(posedge clk) begin
        if (in_valid) begin
            ns = ({20'd0, admit_cycle} * 84'd1000000) / KHZ;
            out_value <= ns[63:0];
        end
        if (rst)
            out_valid <= 1'b0;
        else
            out_valid <= in_valid;
    end
endmodule
