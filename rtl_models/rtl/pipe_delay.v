`default_nettype none
// pipe_delay: a fixed delay of CYCLES clock cycles for a valid bit and its data.
//
// CYCLES = 0 is a wire. Used to pad a pipeline to the latencies of docs/pipeline.md
// (stage_cycles, deparser_cycles, recirc_cycles) so that the RTL is cycle-exact with
// hw.pipeline.timing.
module pipe_delay #(
    parameter WIDTH = 8,   // data bits
    parameter CYCLES = 1   // delay, >= 0
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             in_valid,
    input  wire [WIDTH-1:0] in_data,
    output wire             out_valid,
    output wire [WIDTH-1:0] out_data
);
`ifndef SYNTHESIS
    initial begin
        if (CYCLES < 0 || WIDTH < 1) begin
            $display("pipe_delay: CYCLES %0d must be >= 0, WIDTH %0d >= 1", CYCLES, WIDTH);
            $finish;
        end
    end
`endif

    generate
        if (CYCLES == 0) begin : g_wire
            assign out_valid = in_valid;
            assign out_data = in_data;
        end else begin : g_regs
            reg [CYCLES-1:0] valid_reg;
            reg [WIDTH-1:0] data_reg [0:CYCLES-1];
            integer i;
            always @(posedge clk) begin
                data_reg[0] <= in_data;
                for (i = 1; i < CYCLES; i = i + 1)
                    data_reg[i] <= data_reg[i-1];
                if (rst)
                    valid_reg <= 0;
                else if (CYCLES == 1)
                    valid_reg <= in_valid;
                else
                    valid_reg <= {valid_reg, in_valid};
            end
            assign out_valid = valid_reg[CYCLES-1];
            assign out_data = data_reg[CYCLES-1];
        end
    endgenerate
endmodule
